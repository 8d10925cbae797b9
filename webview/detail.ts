import type { BatchNormSummary, LayerReport, RangeSummary, TensorSummary } from '../src/core/types';
import { formatBytes, formatCompact, formatInt, formatNum, formatPct, formatShape } from '../src/protocol/format';
import { h, themeColor } from './dom';

const CANVAS_W = 300;
const CANVAS_H = 84;

/** The detail pane of the selected layer: tensors with stats, a histogram and per-channel L2 norms. */
export function renderDetail(layer: LayerReport | null): HTMLElement {
  if (!layer) {
    return h('div', { class: 'placeholder' }, 'Select a layer to see its weights, histogram and per-channel norms.');
  }
  const root = h('div', { class: 'detail-body' });
  root.append(
    h('h2', { attrs: { id: 'detail-title' } }, layer.name),
    h(
      'p',
      { class: 'muted' },
      `#${layer.index} · ${layer.op}${layer.native_op !== layer.op ? ` (${layer.native_op})` : ''}`,
    ),
    keyValues([
      ['Output shape', formatShape(layer.output_shape)],
      ['Params', formatInt(layer.params)],
      ['MACs', formatCompact(layer.macs)],
      ['Inputs', layer.inputs.join(', ') || '—'],
      ['Outputs', layer.outputs.join(', ') || '—'],
    ]),
  );
  if (layer.batchnorm) root.append(renderBatchNorm(layer.batchnorm));
  if (layer.weights.length === 0) root.append(h('p', { class: 'muted' }, 'This layer has no weights.'));
  for (const t of layer.weights) root.append(renderTensor(t));
  return root;
}

function keyValues(rows: [string, string][]): HTMLDListElement {
  const dl = h('dl', { class: 'kv' });
  for (const [k, v] of rows) dl.append(h('dt', null, k), h('dd', null, v));
  return dl;
}

function range(r: RangeSummary | null): string {
  return r ? `${formatNum(r.min)} … ${formatNum(r.max)} (mean ${formatNum(r.mean)})` : '—';
}

function channelList(channels: number[]): string {
  if (channels.length === 0) return 'none';
  const shown = channels.slice(0, 24).join(', ');
  return channels.length > 24 ? `${shown}, … (${channels.length})` : `${shown} (${channels.length})`;
}

function renderBatchNorm(bn: BatchNormSummary): HTMLElement {
  const flagged = bn.low_variance_channels.length + bn.low_gamma_channels.length > 0;
  return h(
    'section',
    { class: `bn-summary${flagged ? ' flagged' : ''}`, attrs: { 'aria-label': 'BatchNorm summary' } },
    h('h3', null, 'BatchNorm'),
    keyValues([
      ['Channels', formatInt(bn.channels)],
      ['Epsilon', formatNum(bn.epsilon)],
      ['γ (gamma)', range(bn.gamma)],
      ['β (beta)', range(bn.beta)],
      ['Running mean', range(bn.running_mean)],
      ['Running var', range(bn.running_var)],
      ['Low-variance channels', channelList(bn.low_variance_channels)],
      ['Low-γ channels', channelList(bn.low_gamma_channels)],
      ['Negative γ', formatInt(bn.negative_gamma_channels)],
      ['Max fold scale', formatNum(bn.max_fold_scale)],
      ['Training mode', bn.training_mode ? 'yes' : 'no'],
    ]),
  );
}

function renderTensor(t: TensorSummary): HTMLElement {
  const section = h(
    'section',
    { class: 'tensor', attrs: { 'aria-label': `Tensor ${t.name}` } },
    h('h3', null, t.name, h('span', { class: 'muted' }, ` ${t.role}`)),
    keyValues([
      ['Shape', `${formatShape(t.shape)} ${t.dtype}`],
      ['Size', `${formatBytes(t.bytes)} · ${t.source}`],
      ['Channel axis', t.channel_axis === null ? '—' : String(t.channel_axis)],
    ]),
  );
  const s = t.stats;
  if (!s) {
    section.append(h('p', { class: 'muted' }, 'No statistics (non-float or unavailable data).'));
    return section;
  }
  section.append(
    keyValues([
      ['Mean / std', `${formatNum(s.mean)} / ${formatNum(s.std)}`],
      ['Min / max', `${formatNum(s.min)} / ${formatNum(s.max)}`],
      ['Zero / near-zero', `${formatPct(s.zero_fraction)} / ${formatPct(s.near_zero_fraction)}`],
    ]),
  );
  if (s.histogram.counts.length > 0) {
    section.append(
      h('h4', null, 'Histogram'),
      barChart(
        s.histogram.counts,
        `Histogram of ${t.name}: ${s.histogram.counts.length} bins from ${formatNum(s.histogram.min)} to ${formatNum(s.histogram.max)}`,
        formatNum(s.histogram.min),
        formatNum(s.histogram.max),
        '--vscode-charts-blue',
      ),
    );
  }
  if (s.channel_l2 && s.channel_l2.length > 0) {
    const norms = s.channel_l2;
    let lo = 0;
    let hi = 0;
    for (let i = 1; i < norms.length; i++) {
      if (norms[i]! < norms[lo]!) lo = i;
      if (norms[i]! > norms[hi]!) hi = i;
    }
    const summary = `min ${formatNum(norms[lo])} (channel ${lo}) · max ${formatNum(norms[hi])} (channel ${hi})`;
    section.append(
      h('h4', null, `Per-channel L2 norm (${norms.length} channels)`),
      barChart(norms, `Per-channel L2 norms of ${t.name}: ${summary}`, '0', String(norms.length - 1), '--vscode-charts-purple'),
      h('p', { class: 'muted small' }, summary),
    );
  }
  return section;
}

/** A bar chart on canvas, coloured from the theme; values are bucketed (max) when there are more than pixels. */
function barChart(values: readonly number[], label: string, left: string, right: string, colorVar: string): HTMLElement {
  const dpr = Math.max(1, Math.min(3, window.devicePixelRatio || 1));
  const canvas = h('canvas', { class: 'chart', attrs: { role: 'img', 'aria-label': label } });
  canvas.width = CANVAS_W * dpr;
  canvas.height = CANVAS_H * dpr;
  const ctx = canvas.getContext('2d');
  if (ctx) {
    ctx.scale(dpr, dpr);
    const bar = themeColor(colorVar, themeColor('--vscode-focusBorder', 'gray'));
    const axis = themeColor('--vscode-descriptionForeground', 'gray');
    const n = values.length;
    const buckets = Math.min(n, CANVAS_W);
    const per = n / buckets;
    let max = 0;
    const heights: number[] = [];
    for (let b = 0; b < buckets; b++) {
      let v = 0;
      for (let i = Math.floor(b * per); i < Math.max(Math.floor((b + 1) * per), Math.floor(b * per) + 1); i++) {
        const x = values[i] ?? 0;
        if (Number.isFinite(x) && x > v) v = x;
      }
      heights.push(v);
      if (v > max) max = v;
    }
    const plotH = CANVAS_H - 14;
    const w = CANVAS_W / buckets;
    ctx.fillStyle = bar;
    for (let b = 0; b < buckets; b++) {
      const bh = max > 0 ? (heights[b]! / max) * plotH : 0;
      ctx.fillRect(b * w, plotH - bh, Math.max(1, w - (w > 3 ? 1 : 0)), bh);
    }
    ctx.fillStyle = axis;
    ctx.fillRect(0, plotH, CANVAS_W, 1);
    ctx.font = `10px ${themeColor('--vscode-font-family', 'sans-serif')}`;
    ctx.textBaseline = 'bottom';
    ctx.textAlign = 'left';
    ctx.fillText(left, 0, CANVAS_H);
    ctx.textAlign = 'right';
    ctx.fillText(right, CANVAS_W, CANVAS_H);
  }
  return h('figure', { class: 'chart-wrap' }, canvas);
}
