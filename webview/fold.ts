import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import type { VerifyReport } from '../src/core/types';
import { formatBytes, formatDelta, formatError, formatInt } from '../src/protocol/format';
import type { FoldPreview, VerificationState } from '../src/protocol/messages';
import { clear, h, setDisabled } from './dom';
import { PreviewPanel, type PreviewPanelEvents } from './preview';

export type FoldPanelEvents = PreviewPanelEvents;

/**
 * The Fold BatchNorm preview: what folds into what, what is skipped and why, the size change, and the
 * verification (max abs / rel error of running the model before and after) — then Apply or Cancel.
 */
export class FoldPanel extends PreviewPanel {
  readonly element: HTMLElement;
  private readonly verifyEl: HTMLElement;

  constructor(
    readonly preview: FoldPreview,
    private readonly editable: boolean,
    events: FoldPanelEvents,
  ) {
    super({ title: 'Fold BatchNorm', applyTestId: 'apply-button', cancelTestId: 'cancel-button', previewId: preview.previewId, events });
    const { plan, size, notes } = preview;
    const heading = h('h2', { attrs: { id: 'fold-title', tabindex: -1 } }, 'Fold BatchNorm — preview');

    const folds = h('ul', { class: 'plain' });
    for (const c of plan.candidates) {
      folds.append(h('li', null, h('code', null, c.batchnorm), ' → ', h('code', null, c.into), h('span', { class: 'muted' }, ` (${c.into_op})`)));
    }
    const skipped = h('ul', { class: 'plain' });
    for (const s of plan.skipped) skipped.append(h('li', null, h('code', null, s.layer), `: ${s.reason}`));

    const sizeTable = h(
      'table',
      { class: 'delta', attrs: { 'aria-label': 'Size before and after' } },
      h('tbody', null,
        deltaRow('Params', formatDelta(size.params_before, size.params_after, formatInt)),
        deltaRow('Weight bytes', formatDelta(size.bytes_before, size.bytes_after, formatBytes)),
        deltaRow('Layers', formatDelta(size.layers_before, size.layers_after, formatInt)),
      ),
    );

    this.verifyEl = h('div', { class: 'verify', testid: 'fold-verify', attrs: { 'aria-live': 'polite' } });

    this.element = h(
      'section',
      { class: 'panel fold-preview', testid: 'fold-preview', attrs: { 'aria-labelledby': 'fold-title' } },
      heading,
      h('h3', null, `Folds (${plan.candidates.length})`),
      plan.candidates.length ? folds : h('p', { class: 'muted' }, 'Nothing can be folded.'),
      plan.skipped.length ? h('h3', null, `Skipped (${plan.skipped.length})`) : null,
      plan.skipped.length ? skipped : null,
      h('h3', null, 'Size'),
      sizeTable,
      notes.length
        ? h('ul', { class: 'plain notes', testid: 'fold-notes', attrs: { 'aria-label': 'Notes' } }, ...notes.map((n) => h('li', null, n)))
        : null,
      h('h3', null, 'Verification'),
      this.verifyEl,
      this.errorEl,
      h('div', { class: 'actions' }, this.applyButton, this.cancelButton),
    );
    this.setVerification(preview.verification);
  }

  focus(): void {
    this.element.scrollIntoView({ block: 'nearest' });
    this.element.querySelector<HTMLElement>('#fold-title')?.focus();
  }

  setVerification(v: VerificationState): void {
    this.preview.verification = v;
    clear(this.verifyEl);
    this.verifyEl.append(...renderVerification(v, { rerun: 'Fold BatchNorm' }));
    this.updateButtons();
  }

  protected updateButtons(): void {
    const v = this.preview.verification;
    const ok = v.state === 'done' && this.preview.plan.candidates.length > 0 && this.editable;
    setDisabled(this.applyButton, !ok || this.busy);
    this.applyButton.title = ok
      ? 'Apply as an undoable edit'
      : !this.editable
        ? 'This file is read-only'
        : v.state === 'running'
          ? 'Waiting for the verification'
          : 'Only a verified rewrite can be applied';
    setDisabled(this.cancelButton, this.busy);
  }
}

function deltaRow(label: string, value: string): HTMLTableRowElement {
  return h('tr', null, h('th', { attrs: { scope: 'row' } }, label), h('td', null, value));
}

/**
 * A preview's verification line in each state: progress while both models run, the report when done (plus
 * what `done` adds), the reason otherwise.
 */
export function renderVerification(v: VerificationState, o: { rerun: string; skippedClass?: string; done?: (r: VerifyReport) => HTMLElement }): HTMLElement[] {
  switch (v.state) {
    case 'running':
      return [h('vscode-progress-ring', { attrs: { 'aria-label': 'Verifying' } }), h('span', null, ' Running the model before and after the rewrite…')];
    case 'done':
      return o.done ? [renderVerify(v.report), o.done(v.report)] : [renderVerify(v.report)];
    case 'failed':
      return [h('p', { class: 'error-text' }, v.message)];
    case 'cancelled':
      return [h('p', { class: 'muted' }, `Verification was cancelled; run ${o.rerun} again to verify.`)];
    case 'skipped':
      return [h('p', { class: o.skippedClass ?? 'muted' }, v.message)];
  }
}

export function renderVerify(r: VerifyReport): HTMLElement {
  const shapes = Object.entries(r.input_shapes)
    .map(([name, shape]) => `${name} ${shape.join('×')}`)
    .join(', ');
  const root = h(
    'div',
    null,
    h(
      'p',
      { class: 'verify-summary' },
      h('strong', null, `max abs error ${formatError(r.max_abs_error)}`),
      ` · max rel error ${formatError(r.max_rel_error)}`,
    ),
    h(
      'p',
      { class: 'muted' },
      `${formatInt(r.samples)} sample${r.samples === 1 ? '' : 's'} · engine ${r.engine} · seed ${r.seed}` +
        (shapes ? ` · inputs ${shapes}` : ''),
    ),
  );
  if (r.outputs.length > 1) {
    const body = h('tbody');
    for (const o of r.outputs) {
      body.append(h('tr', null, h('th', { attrs: { scope: 'row' } }, o.name), h('td', { class: 'num' }, formatError(o.max_abs_error)), h('td', { class: 'num' }, formatError(o.max_rel_error))));
    }
    root.append(
      h(
        'table',
        { class: 'delta', attrs: { 'aria-label': 'Error per output' } },
        h('thead', null, h('tr', null, h('th', { attrs: { scope: 'col' } }, 'Output'), h('th', { attrs: { scope: 'col' } }, 'Max abs'), h('th', { attrs: { scope: 'col' } }, 'Max rel'))),
        body,
      ),
    );
  }
  return root;
}
