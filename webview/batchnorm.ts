import type { BatchNormAuditRow, BatchNormContext, DropoutAuditRow } from '../src/core/types';
import { formatInt, formatNum, formatShape } from '../src/protocol/format';
import type { AuditView, BatchNormChannels } from '../src/protocol/messages';
import { barChart } from './charts';
import { h } from './dom';

export interface BatchNormPanelEvents {
  /** the audit at a batch size (null: the model's own) */
  requestAudit(batchSize: number | null): Promise<AuditView | string>;
  requestChannels(layer: string): Promise<BatchNormChannels | string>;
  /** show a layer in the layer table */
  onLayer(name: string): void;
}

const CONTEXT: Record<BatchNormContext, [string, string]> = {
  spatial: ['spatial', 'after a convolution: batch × height × width values per channel'],
  'spatial-1x1': ['1×1 maps', 'the spatial size is 1×1 at this input size: one value per channel per sample'],
  'global-pooled': ['global pool', 'after global pooling: one value per channel per sample at any input size'],
  flattened: ['flattened', 'on a flattened [N, C] tensor: one value per channel per sample'],
  dense: ['dense', 'after a dense layer: one value per channel per sample'],
  vector: ['vector', 'on an [N, C] tensor: one value per channel per sample'],
  unknown: ['unknown', 'shapes unknown (set the symbolic input dims)'],
};

const MAX_BATCH = 1 << 20;

/**
 * The BatchNorm panel: the audit's rows at a chosen batch size (context, effective batch, whether and where
 * each BatchNorm folds, or what blocks it, flagged channels) and, for the selected BatchNorm, per-channel
 * charts of gamma, running variance and the fold scale |gamma| / sqrt(var + eps). Also the Dropout rows.
 */
export class BatchNormPanel {
  readonly element: HTMLElement;
  private readonly batchInput: HTMLInputElement;
  private readonly batchNote: HTMLElement;
  private readonly body: HTMLElement;
  private readonly charts: HTMLElement;
  private audit: AuditView | null = null;
  private selected: string | null = null;
  /** the batch size the user typed (null: the model's own) */
  private batch: number | null = null;
  private generation = 0;
  private channelsToken = 0;

  constructor(private readonly events: BatchNormPanelEvents) {
    this.batchInput = h('input', {
      class: 'num-field',
      testid: 'bn-batch-size',
      attrs: { type: 'number', min: 1, max: MAX_BATCH, step: 1, 'aria-label': 'Batch size for the effective batch' },
    });
    this.batchInput.addEventListener('change', () => {
      const v = Number(this.batchInput.value);
      if (this.batchInput.value.trim() === '') this.batch = null;
      else if (Number.isInteger(v) && v >= 1 && v <= MAX_BATCH) this.batch = v;
      else {
        this.batchInput.setAttribute('aria-invalid', 'true');
        return;
      }
      this.batchInput.removeAttribute('aria-invalid');
      void this.load();
    });
    this.batchNote = h('span', { class: 'muted small' });
    this.body = h('div', { class: 'bn-body' }, h('p', { class: 'muted' }, 'Loading the BatchNorm audit…'));
    this.charts = h('div', { class: 'bn-charts', testid: 'bn-charts' });
    this.element = h(
      'section',
      { class: 'tab-panel batchnorm-panel', testid: 'batchnorm-panel', attrs: { 'aria-label': 'BatchNorm' } },
      h(
        'div',
        { class: 'fields' },
        h('label', { class: 'field' }, h('span', null, 'Batch size'), this.batchInput),
        this.batchNote,
      ),
      this.body,
      this.charts,
    );
  }

  /** The model changed: audit again (keeping the batch size and the selected BatchNorm when it still exists). */
  async load(): Promise<void> {
    const gen = ++this.generation;
    this.element.setAttribute('aria-busy', 'true');
    const r = await this.events.requestAudit(this.batch);
    if (gen !== this.generation) return;
    this.element.removeAttribute('aria-busy');
    if (typeof r === 'string') {
      this.audit = null;
      this.body.replaceChildren(h('p', { class: 'error-text' }, r));
      this.charts.replaceChildren();
      return;
    }
    this.audit = r;
    this.render();
    const rows = r.batchnorm.rows;
    const keep = this.selected !== null && rows.some((x) => x.layer === this.selected) ? this.selected : (rows[0]?.layer ?? null);
    if (keep !== null) void this.selectBatchNorm(keep);
    else this.charts.replaceChildren();
  }

  /** Show the charts of a BatchNorm (from this table or the layer table); ignored for other layers. */
  async selectBatchNorm(layer: string): Promise<void> {
    if (!this.audit?.batchnorm.rows.some((r) => r.layer === layer)) return;
    this.selected = layer;
    for (const tr of this.body.querySelectorAll('tr[data-layer]')) tr.setAttribute('aria-selected', String(tr.getAttribute('data-layer') === layer));
    const token = ++this.channelsToken;
    this.charts.replaceChildren(h('p', { class: 'muted' }, `Reading the channels of ${layer}…`));
    const c = await this.events.requestChannels(layer);
    if (token !== this.channelsToken) return;
    const row = this.audit?.batchnorm.rows.find((r) => r.layer === layer);
    this.charts.replaceChildren(typeof c === 'string' ? h('p', { class: 'error-text' }, c) : renderChannels(c, row ?? null));
  }

  /** The layer table selected a BatchNorm: chart it now if the audit is loaded, else once it is. */
  prefer(layer: string): void {
    if (this.audit) void this.selectBatchNorm(layer);
    else this.selected = layer;
  }

  /** Redraw the canvases (theme change). */
  redraw(): void {
    if (this.selected) void this.selectBatchNorm(this.selected);
  }

  private render(): void {
    const a = this.audit;
    if (!a) return;
    const bn = a.batchnorm;
    if (this.batch === null) this.batchInput.value = String(bn.batch_size);
    this.batchNote.textContent =
      this.batch !== null
        ? `effective batches at batch size ${bn.batch_size}`
        : bn.batch_source === 'model'
          ? `the model's own batch size`
          : `assumed: the batch dimension is symbolic — type the batch size you train with`;
    const parts: HTMLElement[] = [];
    if (bn.rows.length === 0) parts.push(h('p', { class: 'muted' }, 'This model has no BatchNorm layers.'));
    else parts.push(this.renderTable(bn.rows, bn.batch_size));
    if (a.dropout.rows.length) parts.push(renderDropout(a.dropout.rows, (n) => this.events.onLayer(n)));
    this.body.replaceChildren(...parts);
  }

  private renderTable(rows: BatchNormAuditRow[], batch: number): HTMLElement {
    const tbody = h('tbody');
    for (const r of rows) {
      const [ctxLabel, ctxTitle] = CONTEXT[r.context] ?? [r.context, ''];
      const eff = r.effective_batch;
      const effCell = h('td', { class: 'num' }, eff === null ? '?' : formatInt(eff));
      if (eff !== null && eff <= 1) effCell.append(' ', h('span', { class: 'badge error', title: 'Batch statistics over one value per channel: training breaks at this batch size' }, 'breaks'));
      else if (eff !== null && eff < 16) effCell.append(' ', h('span', { class: 'badge warning', title: 'Few values per channel: noisy batch statistics' }, 'small'));
      const fold =
        r.fold !== null
          ? h('td', null, r.fold === 'affine' ? 'Mul + Add' : `${r.fold} → `, r.fold === 'affine' ? null : h('code', null, r.fold_into ?? '?'))
          : h('td', null, h('span', { class: 'badge warning' }, 'no'));
      const blockers = [r.backward_blocker ? `backward: ${r.backward_blocker}` : null, r.forward_blocker ? `forward: ${r.forward_blocker}` : null].filter((x): x is string => x !== null);
      if (blockers.length) fold.append(h('div', { class: 'sub' }, blockers.join(' · ')));
      const flagged = [
        r.low_variance_channels.length ? `${r.low_variance_channels.length} var≈0` : '',
        r.low_gamma_channels.length ? `${r.low_gamma_channels.length} γ≈0` : '',
        r.negative_gamma_channels.length ? `${r.negative_gamma_channels.length} γ<0` : '',
        r.training_mode ? 'training mode' : '',
      ].filter((x) => x);
      const name = h('button', { class: 'link', attrs: { type: 'button', title: 'Show in the layer table' } }, r.layer);
      name.addEventListener('click', (e) => {
        e.stopPropagation();
        this.events.onLayer(r.layer);
      });
      const tr = h(
        'tr',
        { testid: 'bn-row', attrs: { 'data-layer': r.layer, 'aria-selected': 'false', tabindex: 0 } },
        h('td', null, name),
        h('td', { class: 'num' }, formatInt(r.channels)),
        h('td', null, formatShape(r.input_shape)),
        h('td', { title: ctxTitle }, ctxLabel),
        effCell,
        fold,
        h('td', null, flagged.length ? flagged.join(', ') : h('span', { class: 'muted' }, 'none')),
        h('td', { class: 'num', title: r.max_fold_scale_channel !== null ? `channel ${r.max_fold_scale_channel}` : '' }, formatNum(r.max_fold_scale)),
      );
      tr.addEventListener('click', () => void this.selectBatchNorm(r.layer));
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          void this.selectBatchNorm(r.layer);
        }
      });
      tbody.append(tr);
    }
    const th = (label: string, title?: string) => h('th', { attrs: { scope: 'col' }, ...(title ? { title } : {}) }, label);
    return h(
      'div',
      { class: 'table-wrap small-table' },
      h(
        'table',
        { class: 'layers audit', testid: 'bn-audit-table', attrs: { 'aria-label': `BatchNorm layers at batch size ${batch}` } },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            th('BatchNorm'),
            th('Channels'),
            th('Input shape'),
            th('Context', 'Where its batch statistics come from'),
            th(`Effective batch (N=${batch})`, 'Values per channel its statistics are computed over in training'),
            th('Fold', 'How it can be removed for inference, or what blocks it'),
            th('Flagged channels'),
            th('Max fold scale', 'max |γ| / sqrt(var + ε): how much folding scales the weights'),
          ),
        ),
        tbody,
      ),
    );
  }
}

function renderDropout(rows: DropoutAuditRow[], onLayer: (name: string) => void): HTMLElement {
  const tbody = h('tbody');
  for (const r of rows) {
    const name = h('button', { class: 'link', attrs: { type: 'button' } }, r.layer);
    name.addEventListener('click', () => onLayer(r.layer));
    tbody.append(
      h(
        'tr',
        null,
        h('td', null, name, r.native_op && r.native_op !== 'Dropout' ? h('span', { class: 'muted' }, ` ${r.native_op}`) : null),
        h('td', { class: 'num' }, r.rate === null ? '?' : formatNum(r.rate)),
        h('td', null, r.mode),
        h('td', null, r.feeds_batchnorm.length ? `${r.feeds_batchnorm.join(', ')}${r.hops_to_batchnorm ? ` (${r.hops_to_batchnorm} layers on)` : ' (directly)'}` : '—'),
        h('td', null, r.removable ? 'yes' : (r.blocker ?? 'no')),
      ),
    );
  }
  return h(
    'div',
    null,
    h('h3', null, `Dropout (${rows.length})`),
    h(
      'table',
      { class: 'delta dropout-table', attrs: { 'aria-label': 'Dropout layers' } },
      h('thead', null, h('tr', null, ...['Dropout', 'Rate', 'At inference', 'Feeds BatchNorm', 'Removable'].map((l) => h('th', { attrs: { scope: 'col' } }, l)))),
      tbody,
    ),
  );
}

function renderChannels(c: BatchNormChannels, row: BatchNormAuditRow | null): HTMLElement {
  const lowVar = new Set(row?.low_variance_channels ?? []);
  const lowGamma = new Set(row?.low_gamma_channels ?? []);
  const negGamma = new Set(row?.negative_gamma_channels ?? []);
  const flagged = new Set([...lowVar, ...lowGamma]);
  const last = String(c.channels - 1);
  const describe = (values: readonly number[], what: string) => (i: number) => {
    const tags = [lowVar.has(i) ? 'variance ≈ 0' : '', lowGamma.has(i) ? 'γ ≈ 0' : '', negGamma.has(i) ? 'γ < 0' : ''].filter((x) => x);
    return `channel ${i}: ${what} ${formatNum(values[i])}${tags.length ? ` — ${tags.join(', ')}` : ''}`;
  };
  const stats = (v: readonly number[]) => {
    let lo = 0;
    let hi = 0;
    for (let i = 1; i < v.length; i++) {
      if (v[i]! < v[lo]!) lo = i;
      if (v[i]! > v[hi]!) hi = i;
    }
    return `min ${formatNum(v[lo])} (channel ${lo}) · max ${formatNum(v[hi])} (channel ${hi})`;
  };
  return h(
    'div',
    null,
    h('h3', null, `${c.layer} — ${formatInt(c.channels)} channels, ε ${formatNum(c.epsilon)}`),
    flagged.size || negGamma.size
      ? h(
          'p',
          { class: 'muted small' },
          'Orange: ' +
            [
              flagged.size ? `${flagged.size} channel${flagged.size === 1 ? '' : 's'} with variance ≈ 0 or γ ≈ 0 (dead channels: pruning candidates)` : '',
              negGamma.size ? `${negGamma.size} channel${negGamma.size === 1 ? '' : 's'} with γ < 0 (in the γ chart)` : '',
            ]
              .filter((x) => x)
              .join('; ') +
            '. Hover a bar for its value.',
        )
      : h('p', { class: 'muted small' }, 'No flagged channels. Hover a bar for its value.'),
    h('h4', null, `γ (gamma) per channel — ${stats(c.gamma)}`),
    barChart({
      values: c.gamma,
      label: `gamma per channel of ${c.layer}: ${stats(c.gamma)}`,
      colorVar: '--vscode-charts-blue',
      highlight: new Set([...flagged, ...negGamma]),
      left: '0',
      right: last,
      describe: describe(c.gamma, 'γ'),
      testid: 'bn-chart-gamma',
    }),
    h('h4', null, `Running variance per channel — ${stats(c.variance)}`),
    barChart({
      values: c.variance,
      label: `running variance per channel of ${c.layer}: ${stats(c.variance)}`,
      colorVar: '--vscode-charts-purple',
      highlight: flagged,
      left: '0',
      right: last,
      describe: describe(c.variance, 'variance'),
      testid: 'bn-chart-variance',
    }),
    h('h4', null, `Fold scale |γ| / √(var + ε) per channel — ${stats(c.foldScale)}`),
    barChart({
      values: c.foldScale,
      label: `fold scale per channel of ${c.layer}: ${stats(c.foldScale)}`,
      colorVar: '--vscode-charts-green',
      highlight: new Set(c.foldScale.map((v, i) => (v > 1000 ? i : -1)).filter((i) => i >= 0)),
      left: '0',
      right: last,
      describe: describe(c.foldScale, 'fold scale'),
      testid: 'bn-chart-fold-scale',
    }),
  );
}
