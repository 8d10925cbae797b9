import { isValidDim, MAX_DIM } from '../src/protocol/dims';
import type { DocumentView } from '../src/protocol/messages';
import { h } from './dom';
import { formatInputShapes } from './views';

/** Sends new dims to the host; resolves with an error line, or null when they were accepted. */
export type SubmitDims = (dims: Record<string, number>) => Promise<string | null>;

/**
 * "Input dimensions": one number field per symbolic input dim (ONNX dim_param), shown only when the model has
 * some. A committed change (Enter / leaving the field) re-runs the analysis on the host with the new values,
 * which are also what the Fold BatchNorm verification feeds the model; the host remembers them per file.
 */
export class DimsControl {
  readonly element: HTMLElement;
  private readonly fieldsEl: HTMLElement;
  private readonly noteEl: HTMLElement;
  private readonly errorEl: HTMLElement;
  private names: string[] = [];
  private readonly inputs = new Map<string, HTMLInputElement>();
  /** the values the current analysis used */
  private applied: Record<string, number> = {};
  private pending = 0;

  constructor(private readonly submit: SubmitDims) {
    this.fieldsEl = h('div', { class: 'dims-fields' });
    this.noteEl = h('p', { class: 'muted dims-note', testid: 'dims-note' });
    this.errorEl = h('p', { class: 'error-text', attrs: { role: 'alert', hidden: true } });
    this.element = h(
      'section',
      { class: 'dims', testid: 'dims-input', attrs: { 'aria-labelledby': 'dims-title', hidden: true } },
      h('h2', { class: 'inline', attrs: { id: 'dims-title' } }, 'Input dimensions'),
      this.fieldsEl,
      this.noteEl,
      this.errorEl,
    );
  }

  update(doc: DocumentView): void {
    const names = doc.inputDims.map((d) => d.name);
    this.element.hidden = names.length === 0;
    if (names.join('\u0000') !== this.names.join('\u0000')) this.build(names);
    this.applied = Object.fromEntries(doc.inputDims.map((d) => [d.name, d.value]));
    for (const d of doc.inputDims) {
      const input = this.inputs.get(d.name);
      // never overwrite what the user is typing
      if (input && document.activeElement !== input && this.pending === 0) {
        input.value = String(d.value);
        input.removeAttribute('aria-invalid');
      }
    }
    this.noteEl.textContent = names.length
      ? `Output shapes and MACs are for input ${formatInputShapes(doc)}; Fold BatchNorm verifies at this size.`
      : '';
    if (this.pending === 0) this.showError(null);
  }

  private build(names: string[]): void {
    this.names = names;
    this.inputs.clear();
    this.fieldsEl.replaceChildren();
    for (const name of names) {
      const input = h('input', {
        class: 'dim-field',
        testid: `dim-${name}`,
        attrs: { type: 'number', min: 1, max: MAX_DIM, step: 1, value: 1, inputmode: 'numeric', 'aria-label': `Value of input dimension ${name}` },
      });
      // `change` fires on Enter and when the field loses focus with a new value
      input.addEventListener('change', () => void this.commit());
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Escape') {
          input.value = String(this.applied[name] ?? 1);
          input.removeAttribute('aria-invalid');
          this.showError(null);
        }
      });
      this.inputs.set(name, input);
      this.fieldsEl.append(h('label', { class: 'dim' }, h('span', { class: 'dim-name', title: name }, name), input));
    }
  }

  /** Read every field; submit when all are valid and something changed. */
  private async commit(): Promise<void> {
    const dims: Record<string, number> = {};
    let invalid: string | null = null;
    for (const [name, input] of this.inputs) {
      const v = Number(input.value.trim());
      if (input.value.trim() === '' || !isValidDim(v)) {
        input.setAttribute('aria-invalid', 'true');
        invalid ??= name;
      } else {
        input.removeAttribute('aria-invalid');
        dims[name] = v;
      }
    }
    if (invalid !== null) {
      this.showError(`${invalid}: enter a whole number from 1 to ${MAX_DIM}.`);
      return;
    }
    this.showError(null);
    if (this.names.every((n) => dims[n] === (this.applied[n] ?? 1))) return;
    this.pending++;
    this.element.setAttribute('aria-busy', 'true');
    try {
      const error = await this.submit(dims);
      this.showError(error);
    } finally {
      if (--this.pending === 0) this.element.removeAttribute('aria-busy');
    }
  }

  private showError(message: string | null): void {
    this.errorEl.textContent = message ?? '';
    this.errorEl.hidden = message === null;
  }
}
