import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import type { FoldCandidate, RewriteCandidate } from '../src/core/types';
import { fixDescription } from '../src/protocol/fixes';
import { formatBytes, formatDelta, formatError, formatInt } from '../src/protocol/format';
import type { FixPreview, FixSettings, FixVerification } from '../src/protocol/messages';
import { clear, h, setDisabled } from './dom';
import { renderVerification } from './fold';
import { PreviewPanel, type PreviewPanelEvents } from './preview';

export interface FixPanelEvents extends PreviewPanelEvents {
  /** new settings (rate, groups): the preview is planned again with them */
  onSettings(fixId: string, settings: FixSettings): void;
}

function isFold(c: FoldCandidate | RewriteCandidate): c is FoldCandidate {
  return 'batchnorm' in c;
}

/**
 * The preview of a doctor fix: what changes (candidates, skipped with reasons), the size change, the
 * verification — for fixes that keep the outputs the max abs / rel error and the tolerance; for fixes that
 * change them on purpose the measured deviation and a plain warning — then Apply (an undoable edit) or Cancel.
 */
export class FixPanel extends PreviewPanel {
  readonly element: HTMLElement;
  private readonly verifyEl: HTMLElement;

  constructor(
    readonly preview: FixPreview,
    private readonly editable: boolean,
    private readonly events: FixPanelEvents,
  ) {
    super({ title: preview.title, applyTestId: 'fix-apply-button', cancelTestId: 'fix-cancel-button', previewId: preview.previewId, events });
    const p = preview;
    const heading = h('h2', { attrs: { id: 'fix-title', tabindex: -1 } }, `${p.title} — preview`);
    const changes = h('ul', { class: 'plain' });
    for (const c of p.plan.candidates as (FoldCandidate | RewriteCandidate)[]) {
      changes.append(
        isFold(c)
          ? h('li', null, h('code', null, c.batchnorm), ' → ', h('code', null, c.into), h('span', { class: 'muted' }, ` (${c.into_op}${c.direction ? `, ${c.direction}` : ''})`), c.note ? h('span', { class: 'muted' }, ` — ${c.note}`) : null)
          : h('li', null, h('code', null, c.layer), `: ${c.action}`, c.note ? h('span', { class: 'muted' }, ` — ${c.note}`) : null),
      );
    }
    const skipped = h('ul', { class: 'plain' });
    for (const s of p.plan.skipped) skipped.append(h('li', null, h('code', null, s.layer), `: ${s.reason}`));

    this.verifyEl = h('div', { class: 'verify', testid: 'fix-verify', attrs: { 'aria-live': 'polite' } });

    this.element = h(
      'section',
      { class: 'panel fix-preview', testid: 'fix-preview', attrs: { 'aria-labelledby': 'fix-title', 'data-fix': p.fixId } },
      heading,
      h('p', { class: 'explain muted' }, fixDescription(p.fixId)),
      p.preservesOutputs
        ? null
        : h(
            'div',
            { class: 'warn-box', testid: 'fix-changes-function', attrs: { role: 'note' } },
            h('strong', null, 'This fix changes what the model computes. '),
            p.unverifiable
              ? 'Its deviation from the original could not be measured here. '
              : 'The verification below measures how far the new outputs are from the original — a difference is expected, not an error. ',
            'Fine-tune (or at least re-evaluate) the model before you use it.',
          ),
      this.renderSettings(),
      h('h3', null, `Changes (${p.plan.candidates.length})`),
      p.plan.candidates.length ? changes : h('p', { class: 'muted' }, 'Nothing to change.'),
      p.plan.skipped.length ? h('h3', null, `Skipped (${p.plan.skipped.length})`) : null,
      p.plan.skipped.length ? skipped : null,
      h('h3', null, 'Size'),
      h(
        'table',
        { class: 'delta', attrs: { 'aria-label': 'Size before and after' } },
        h(
          'tbody',
          null,
          row('Params', formatDelta(p.size.params_before, p.size.params_after, formatInt)),
          row('Weight bytes', formatDelta(p.size.bytes_before, p.size.bytes_after, formatBytes)),
          row('Layers', formatDelta(p.size.layers_before, p.size.layers_after, formatInt)),
        ),
      ),
      p.notes.length ? h('ul', { class: 'plain notes', testid: 'fix-notes', attrs: { 'aria-label': 'Notes' } }, ...p.notes.map((n) => h('li', null, n))) : null,
      h('h3', null, p.preservesOutputs ? 'Verification' : 'Measured deviation'),
      this.verifyEl,
      this.errorEl,
      h('div', { class: 'actions' }, this.applyButton, this.cancelButton),
    );
    this.setVerification({ verification: p.verification, withinTolerance: p.withinTolerance });
  }

  /** Number fields for the fixes that take a setting; a committed change plans the preview again. */
  private renderSettings(): HTMLElement | null {
    const p = this.preview;
    const field = (label: string, testid: string, value: number, attrs: Record<string, number | string>, read: (v: number) => FixSettings | null): HTMLElement => {
      const input = h('input', { class: 'num-field', testid, attrs: { type: 'number', value, 'aria-label': label, ...attrs } });
      input.addEventListener('change', () => {
        const s = read(Number(input.value));
        if (s) {
          input.removeAttribute('aria-invalid');
          this.events.onSettings(p.fixId, s);
        } else input.setAttribute('aria-invalid', 'true');
      });
      return h('label', { class: 'field' }, h('span', null, label), input);
    };
    if (p.fixId === 'set-dropout-rate') {
      return h(
        'div',
        { class: 'fields' },
        field('New dropout rate', 'fix-rate', p.settings.rate ?? 0.1, { min: 0, max: 0.99, step: 0.05 }, (v) => (v >= 0 && v < 1 ? { ...p.settings, rate: v } : null)),
      );
    }
    if (p.fixId === 'replace-batchnorm-groupnorm') {
      return h(
        'div',
        { class: 'fields' },
        field('Groups (at most)', 'fix-groups', p.settings.groups ?? 32, { min: 1, max: 4096, step: 1 }, (v) => (Number.isInteger(v) && v >= 1 ? { ...p.settings, groups: v } : null)),
      );
    }
    return null;
  }

  focus(): void {
    this.element.scrollIntoView({ block: 'nearest' });
    this.element.querySelector<HTMLElement>('#fix-title')?.focus();
  }

  setVerification(v: FixVerification): void {
    this.preview.verification = v.verification;
    this.preview.withinTolerance = v.withinTolerance;
    const p = this.preview;
    clear(this.verifyEl);
    const done = (r: { max_abs_error: number; max_rel_error: number }) =>
      p.preservesOutputs
        ? v.withinTolerance
          ? h('p', { class: 'ok-text' }, `Within tolerance (1e-6 + ${p.rtol} × |output|): the rewrite keeps the outputs.`)
          : h('p', { class: 'error-text' }, `Beyond the tolerance (1e-6 + ${p.rtol} × |output|): this rewrite is not applied.`)
        : h(
            'p',
            { class: 'warn-text' },
            `The outputs move by up to ${formatError(r.max_abs_error)} (relative ${formatError(r.max_rel_error)}) on the probe inputs: ` +
              'this fix changes the function on purpose; the model needs fine-tuning before use.',
          );
    this.verifyEl.append(...renderVerification(v.verification, { rerun: 'the fix', skippedClass: p.unverifiable ? 'warn-text' : 'muted', done }));
    this.updateButtons();
  }

  protected updateButtons(): void {
    const p = this.preview;
    const st = p.verification.state;
    const verified = st === 'done' && (!p.preservesOutputs || p.withinTolerance === true);
    const unverifiable = st === 'skipped' && p.unverifiable !== null;
    const ok = p.applied > 0 && this.editable && (verified || unverifiable);
    setDisabled(this.applyButton, !ok || this.busy);
    this.applyButton.title = ok
      ? p.preservesOutputs
        ? 'Apply as an undoable edit'
        : 'Apply as an undoable edit (it changes the outputs: fine-tune afterwards)'
      : !this.editable
        ? 'This file is read-only'
        : p.applied === 0
          ? 'Nothing to change'
          : st === 'running'
            ? 'Waiting for the verification'
            : 'Only a rewrite verified within tolerance can be applied';
    setDisabled(this.cancelButton, this.busy);
  }
}

function row(label: string, value: string): HTMLTableRowElement {
  return h('tr', null, h('th', { attrs: { scope: 'row' } }, label), h('td', null, value));
}
