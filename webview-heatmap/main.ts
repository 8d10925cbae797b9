/**
 * The Probe Activations (dead neurons) panel (bundled by esbuild to dist/heatmap.js, loaded with the page's CSP
 * nonce). Heatmap of APoZ (rows = activation layers, columns = channels) on a canvas, dead fraction per layer,
 * activation mean/variance by depth, and the Prune dead units / Swap activation previews. Everything it knows
 * comes from the host as summaries (src/protocol/heatmap.ts).
 */
import {
  isHeatmapHostMessage,
  type HeatmapHostMessage,
  type HeatmapLayer,
  type HeatmapWebviewMessage,
  type ProbeSettings,
  type ProbeSummary,
  type PrunePreview,
  type SwapPreview,
} from '../src/protocol/heatmap';
import css from './styles.css';

interface PersistedState {
  sort: 'apoz' | 'channel';
  zoom: number;
}

const vscode = acquireVsCodeApi<PersistedState>();
const sheet = new CSSStyleSheet();
sheet.replaceSync(css);
document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];

const saved = vscode.getState();
const state: {
  persisted: PersistedState;
  fileName: string;
  settings: ProbeSettings | null;
  sourceLabel: string;
  probe: ProbeSummary | null;
  busy: string | null;
  message: { kind: 'error' | 'info' | 'warning'; text: string } | null;
  preview: { kind: 'prune'; preview: PrunePreview } | { kind: 'swap'; preview: SwapPreview } | null;
  selected: { row: number; channel: number } | null;
} = {
  persisted: { sort: saved?.sort === 'channel' ? 'channel' : 'apoz', zoom: typeof saved?.zoom === 'number' ? saved.zoom : 1 },
  fileName: '',
  settings: null,
  sourceLabel: '',
  probe: null,
  busy: null,
  message: null,
  preview: null,
  selected: null,
};

function send(m: HeatmapWebviewMessage): void {
  vscode.postMessage(m);
}

function persist(): void {
  vscode.setState(state.persisted);
}

// ------------------------------------------------------------------------------------------------ DOM helpers

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function button(label: string, testid: string, onClick: () => void, secondary = false): HTMLButtonElement {
  const b = el('button', { 'data-testid': testid, type: 'button', ...(secondary ? { class: 'secondary' } : {}) }, label);
  b.disabled = state.busy !== null;
  b.addEventListener('click', onClick);
  return b;
}

const fmt = (x: number, digits = 3): string => (Number.isFinite(x) ? (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(2) : x.toFixed(digits)) : String(x));
const fmtInt = (x: number | null): string => (x === null ? 'unknown' : x.toLocaleString('en-US'));
const fmtBytes = (b: number): string => (b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(2)} MB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KB` : `${b} B`);
const pct = (a: number, b: number | null): string => (b === null || a === 0 ? '' : ` (${(((b - a) / a) * 100).toFixed(1)}%)`);

// ------------------------------------------------------------------------------------------------ colours

interface Rgb {
  r: number;
  g: number;
  b: number;
}

const colorCtx = document.createElement('canvas').getContext('2d');

function themeColor(name: string, fallback: string): Rgb {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
  if (!colorCtx) return { r: 128, g: 128, b: 128 };
  colorCtx.fillStyle = fallback;
  colorCtx.fillStyle = v; // normalises any CSS colour to #rrggbb or rgba(...)
  const s = String(colorCtx.fillStyle);
  if (s.startsWith('#')) return { r: parseInt(s.slice(1, 3), 16), g: parseInt(s.slice(3, 5), 16), b: parseInt(s.slice(5, 7), 16) };
  const m = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(s);
  return m ? { r: Number(m[1]), g: Number(m[2]), b: Number(m[3]) } : { r: 128, g: 128, b: 128 };
}

const css3 = (c: Rgb): string => `rgb(${c.r | 0}, ${c.g | 0}, ${c.b | 0})`;
const mix = (a: Rgb, b: Rgb, t: number): Rgb => ({ r: a.r + (b.r - a.r) * t, g: a.g + (b.g - a.g) * t, b: a.b + (b.b - a.b) * t });

interface Palette {
  low: Rgb;
  mid: Rgb;
  high: Rgb;
  constant: Rgb;
  fg: Rgb;
  muted: Rgb;
  bg: Rgb;
  focus: Rgb;
  series: Rgb[];
}

function palette(): Palette {
  return {
    low: themeColor('--vscode-charts-blue', '#3794ff'),
    mid: themeColor('--vscode-charts-yellow', '#cca700'),
    high: themeColor('--vscode-charts-red', '#f14c4c'),
    constant: themeColor('--vscode-charts-purple', '#b180d7'),
    fg: themeColor('--vscode-foreground', '#cccccc'),
    muted: themeColor('--vscode-descriptionForeground', '#999999'),
    bg: themeColor('--vscode-editor-background', '#1e1e1e'),
    focus: themeColor('--vscode-focusBorder', '#007fd4'),
    series: [themeColor('--vscode-charts-blue', '#3794ff'), themeColor('--vscode-charts-orange', '#d18616'), themeColor('--vscode-charts-green', '#89d185'), themeColor('--vscode-charts-purple', '#b180d7')],
  };
}

function apozColor(p: Palette, apoz: number): string {
  const t = Math.max(0, Math.min(1, apoz));
  return css3(t < 0.5 ? mix(p.low, p.mid, t * 2) : mix(p.mid, p.high, (t - 0.5) * 2));
}

function setupCanvas(canvas: HTMLCanvasElement, width: number, height: number): CanvasRenderingContext2D | null {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(width * dpr));
  canvas.height = Math.max(1, Math.round(height * dpr));
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext('2d');
  ctx?.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

// ------------------------------------------------------------------------------------------------ heatmap

const ROW_HEIGHT = 16;
const LABEL_WIDTH = 150;

/** channel order of a row: by APoZ (highest first, dead on the left) or by index */
function rowOrder(layer: HeatmapLayer): number[] {
  const idx = layer.apoz.map((_, i) => i);
  if (state.persisted.sort === 'apoz') idx.sort((a, b) => (layer.apoz[b] ?? 0) - (layer.apoz[a] ?? 0) || a - b);
  return idx;
}

interface HeatmapGeometry {
  width: number;
  rowHeight: number;
  orders: number[][];
}

let geometry: HeatmapGeometry | null = null;

function drawHeatmap(canvas: HTMLCanvasElement, probe: ProbeSummary, containerWidth: number): void {
  const zoom = state.persisted.zoom;
  const width = Math.max(200, Math.floor((containerWidth - LABEL_WIDTH - 24) * zoom));
  const rowHeight = Math.round(ROW_HEIGHT * Math.max(1, zoom));
  const orders = probe.layers.map(rowOrder);
  geometry = { width, rowHeight, orders };
  const ctx = setupCanvas(canvas, width, rowHeight * probe.layers.length);
  if (!ctx) return;
  const p = palette();
  ctx.fillStyle = css3(p.bg);
  ctx.fillRect(0, 0, width, rowHeight * probe.layers.length);
  probe.layers.forEach((layer, row) => {
    const order = orders[row] ?? [];
    const c = order.length;
    if (c === 0) return;
    const y = row * rowHeight;
    const constant = new Set(layer.constant);
    if (c <= width) {
      // one rectangle per channel (wide enough to see)
      for (let i = 0; i < c; i++) {
        const ch = order[i] ?? 0;
        const x0 = Math.floor((i * width) / c);
        const x1 = Math.floor(((i + 1) * width) / c);
        ctx.fillStyle = constant.has(ch) ? css3(p.constant) : apozColor(p, layer.apoz[ch] ?? 0);
        ctx.fillRect(x0, y, Math.max(1, x1 - x0 - (x1 - x0 > 3 ? 1 : 0)), rowHeight - 1);
      }
    } else {
      // wide layer drawn scaled: one pixel column per bin of channels, showing the bin's highest APoZ
      for (let x = 0; x < width; x++) {
        const a = Math.floor((x * c) / width);
        const b = Math.max(a + 1, Math.floor(((x + 1) * c) / width));
        let worst = 0;
        for (let i = a; i < b; i++) worst = Math.max(worst, layer.apoz[order[i] ?? 0] ?? 0);
        ctx.fillStyle = apozColor(p, worst);
        ctx.fillRect(x, y, 1, rowHeight - 1);
      }
    }
  });
  const sel = state.selected;
  if (sel && probe.layers[sel.row]) {
    const order = orders[sel.row] ?? [];
    const i = order.indexOf(sel.channel);
    if (i >= 0) {
      const c = order.length;
      const x0 = Math.floor((i * width) / c);
      const x1 = Math.max(x0 + 2, Math.floor(((i + 1) * width) / c));
      ctx.strokeStyle = css3(p.fg);
      ctx.lineWidth = 2;
      ctx.strokeRect(x0 + 1, sel.row * rowHeight + 1, x1 - x0 - 2, rowHeight - 3);
    }
  }
}

function hitTest(probe: ProbeSummary, x: number, y: number): { row: number; channel: number } | null {
  if (!geometry) return null;
  const row = Math.floor(y / geometry.rowHeight);
  const order = geometry.orders[row];
  if (!order || !probe.layers[row] || x < 0 || x >= geometry.width) return null;
  const i = Math.floor((x * order.length) / geometry.width);
  const channel = order[i];
  return channel === undefined ? null : { row, channel };
}

function heatmapSection(probe: ProbeSummary): HTMLElement {
  const section = el('section');
  const sortSelect = el('select', { 'data-testid': 'heatmap-sort', 'aria-label': 'Column order' });
  sortSelect.append(el('option', { value: 'apoz' }, 'sorted by APoZ'), el('option', { value: 'channel' }, 'channel order'));
  sortSelect.value = state.persisted.sort;
  sortSelect.addEventListener('change', () => {
    state.persisted.sort = sortSelect.value === 'channel' ? 'channel' : 'apoz';
    persist();
    render();
  });
  const zoomLabel = el('span', { class: 'muted' }, `${Math.round(state.persisted.zoom * 100)}%`);
  const setZoom = (z: number): void => {
    state.persisted.zoom = Math.max(1, Math.min(16, z));
    persist();
    render();
  };
  const legend = el('canvas', { width: '120', height: '10' });
  const lctx = setupCanvas(legend, 120, 10);
  if (lctx) {
    const p = palette();
    for (let x = 0; x < 120; x++) {
      lctx.fillStyle = apozColor(p, x / 119);
      lctx.fillRect(x, 0, 1, 10);
    }
  }
  const constKey = el('span', { class: 'series-key' });
  constKey.style.background = css3(palette().constant);
  section.append(
    el('h3', {}, 'APoZ heatmap (layers × channels)'),
    el(
      'div',
      { class: 'toolbar' },
      el('label', {}, 'Columns ', sortSelect),
      el('span', {}, 'Zoom '),
      button('−', 'zoom-out', () => setZoom(state.persisted.zoom / 2), true),
      zoomLabel,
      button('+', 'zoom-in', () => setZoom(state.persisted.zoom * 2), true),
      el('span', { class: 'legend' }, 'APoZ 0', legend, '1 (dead)', constKey, 'constant'),
    ),
  );
  const labels = el('div', { class: 'heatmap-labels' });
  labels.style.width = `${LABEL_WIDTH}px`;
  const rowHeight = Math.round(ROW_HEIGHT * Math.max(1, state.persisted.zoom));
  for (const l of probe.layers) {
    const d = el('div', { title: `${l.name} (${l.op}, ${l.channels} channels)` }, l.name);
    d.style.height = `${rowHeight}px`;
    d.style.lineHeight = `${rowHeight}px`;
    labels.append(d);
  }
  const canvas = el('canvas', { 'data-testid': 'heatmap', tabindex: '0', role: 'img', 'aria-label': `APoZ heatmap of ${probe.layers.length} activation layers` });
  const wrap = el('div', { class: 'heatmap-wrap' }, el('div', { class: 'heatmap-row' }, labels, canvas));
  section.append(wrap);
  const tooltip = el('div', { class: 'tooltip', 'data-testid': 'heatmap-tooltip' });
  tooltip.hidden = true;
  section.append(tooltip);
  const where = (ev: MouseEvent): { row: number; channel: number } | null => {
    const r = canvas.getBoundingClientRect();
    return hitTest(probe, ev.clientX - r.left, ev.clientY - r.top);
  };
  canvas.addEventListener('mousemove', (ev) => {
    const hit = where(ev);
    const layer = hit ? probe.layers[hit.row] : undefined;
    if (!hit || !layer) {
      tooltip.hidden = true;
      return;
    }
    const ch = hit.channel;
    const status = layer.dead.includes(ch) ? ' — dead' : layer.constant.includes(ch) ? ' — constant' : '';
    tooltip.textContent = `${layer.name} (${layer.op})\nchannel ${ch}${status}\nAPoZ ${fmt(layer.apoz[ch] ?? NaN)}\nmean ${fmt(layer.mean[ch] ?? NaN)}\nmax  ${fmt(layer.max[ch] ?? NaN)}`;
    tooltip.hidden = false;
    tooltip.style.left = `${Math.min(ev.clientX + 14, window.innerWidth - 220)}px`;
    tooltip.style.top = `${ev.clientY + 14}px`;
  });
  canvas.addEventListener('mouseleave', () => (tooltip.hidden = true));
  canvas.addEventListener('click', (ev) => {
    const hit = where(ev);
    const layer = hit ? probe.layers[hit.row] : undefined;
    if (!hit || !layer) return;
    state.selected = hit;
    drawHeatmap(canvas, probe, document.body.clientWidth);
    selectedLine.textContent = `Selected: ${layer.name} channel ${hit.channel} — APoZ ${fmt(layer.apoz[hit.channel] ?? NaN)}, mean ${fmt(layer.mean[hit.channel] ?? NaN)}, max ${fmt(layer.max[hit.channel] ?? NaN)}`;
    send({ type: 'reveal', layer: layer.name, channel: hit.channel });
  });
  const selectedLine = el('p', { class: 'muted', 'data-testid': 'heatmap-selected' }, 'Hover a cell for its statistics; click it to reveal its layer in the editor.');
  section.append(selectedLine);
  requestAnimationFrame(() => drawHeatmap(canvas, probe, document.body.clientWidth));
  return section;
}

// ------------------------------------------------------------------------------------------------ bars and charts

function layerBars(probe: ProbeSummary): HTMLElement {
  const bars = el('div', { class: 'bars', 'data-testid': 'heatmap-layer-bar' });
  for (const l of probe.layers) {
    const n = l.dead.length + l.constant.length;
    const fill = el('div', { class: 'fill' });
    fill.style.width = `${l.channels ? (100 * n) / l.channels : 0}%`;
    bars.append(el('span', { class: 'name', title: l.name }, l.name), el('div', { class: 'track' }, fill), el('span', { class: 'num' }, `${n}/${l.channels}`));
  }
  return el('section', {}, el('h3', {}, 'Dead fraction per layer (dead + constant units)'), bars);
}

interface Series {
  label: string;
  values: (number | null)[];
  color: Rgb;
  dashed?: boolean;
}

function lineChart(testid: string, xLabels: string[], series: Series[], title: string): HTMLElement {
  const canvas = el('canvas', { 'data-testid': testid, role: 'img', 'aria-label': title });
  const keys = el('div', { class: 'legend' });
  for (const s of series) {
    const k = el('span', { class: 'series-key' });
    k.style.background = css3(s.color);
    keys.append(k, `${s.label}${s.dashed ? ' (dashed)' : ''}`);
  }
  const draw = (): void => {
    const room = (canvas.parentElement?.clientWidth ?? document.body.clientWidth) - 4;
    const width = Math.max(240, Math.min(900, room));
    const height = 180;
    const ctx = setupCanvas(canvas, width, height);
    if (!ctx) return;
    const p = palette();
    const left = 48;
    const bottom = 20;
    const top = 8;
    const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
    let lo = Math.min(0, ...all);
    let hi = Math.max(...all, lo + 1e-9);
    if (hi - lo < 1e-9) hi = lo + 1;
    const pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
    const n = Math.max(1, xLabels.length - 1);
    const X = (i: number): number => left + ((width - left - 8) * i) / n;
    const Y = (v: number): number => top + (height - top - bottom) * (1 - (v - lo) / (hi - lo));
    ctx.font = '10px sans-serif';
    ctx.strokeStyle = css3(p.muted);
    ctx.fillStyle = css3(p.muted);
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(left, top);
    ctx.lineTo(left, height - bottom);
    ctx.lineTo(width - 8, height - bottom);
    ctx.stroke();
    for (const v of [lo + pad, (lo + hi) / 2, hi - pad]) {
      ctx.fillText(fmt(v, 2), 2, Y(v) + 3);
    }
    xLabels.forEach((_, i) => {
      if (xLabels.length <= 24 || i % Math.ceil(xLabels.length / 24) === 0) ctx.fillText(String(i), X(i) - 3, height - 6);
    });
    for (const s of series) {
      ctx.strokeStyle = css3(s.color);
      ctx.fillStyle = css3(s.color);
      ctx.lineWidth = 2;
      ctx.setLineDash(s.dashed ? [5, 4] : []);
      ctx.beginPath();
      let pen = false;
      s.values.forEach((v, i) => {
        if (v === null || !Number.isFinite(v)) {
          pen = false;
          return;
        }
        if (pen) ctx.lineTo(X(i), Y(v));
        else ctx.moveTo(X(i), Y(v));
        pen = true;
      });
      ctx.stroke();
      ctx.setLineDash([]);
      s.values.forEach((v, i) => {
        if (v !== null && Number.isFinite(v)) ctx.fillRect(X(i) - 2, Y(v) - 2, 4, 4);
      });
    }
  };
  requestAnimationFrame(draw);
  return el('div', {}, el('h3', {}, title), keys, canvas, el('p', { class: 'muted' }, 'x: activation layer by depth (0 = first)'));
}

function depthChart(probe: ProbeSummary): HTMLElement {
  const p = palette();
  return lineChart(
    'depth-chart',
    probe.layers.map((l) => l.name),
    [
      { label: 'mean', values: probe.layers.map((l) => l.layer_mean), color: p.series[0] ?? p.fg },
      { label: 'variance', values: probe.layers.map((l) => l.layer_var), color: p.series[1] ?? p.fg },
    ],
    'Activation mean / variance by depth',
  );
}

// ------------------------------------------------------------------------------------------------ previews

function prunePreviewView(pr: PrunePreview): HTMLElement {
  const box = el('section', { class: 'preview', 'data-testid': 'prune-preview' });
  box.append(el('h3', {}, pr.removed ? `Prune ${pr.removed} dead unit(s)` : 'Nothing to prune'));
  if (pr.removedPerLayer.length) {
    const t = el('table', {}, el('tr', {}, el('th', {}, 'layer'), el('th', {}, 'channels removed')));
    for (const r of pr.removedPerLayer) t.append(el('tr', {}, el('td', {}, el('code', {}, r.layer)), el('td', { class: 'num' }, String(r.removed))));
    box.append(t);
  }
  const sizes = el(
    'table',
    { 'data-testid': 'prune-sizes' },
    el('tr', {}, el('th', {}, ''), el('th', {}, 'before'), el('th', {}, 'after')),
    el('tr', {}, el('td', {}, 'parameters'), el('td', { class: 'num' }, fmtInt(pr.params[0])), el('td', { class: 'num' }, fmtInt(pr.params[1]) + pct(pr.params[0], pr.params[1]))),
    el('tr', {}, el('td', {}, 'MACs'), el('td', { class: 'num' }, fmtInt(pr.macs[0])), el('td', { class: 'num' }, fmtInt(pr.macs[1]) + (pr.macs[0] !== null ? pct(pr.macs[0], pr.macs[1]) : ''))),
    el('tr', {}, el('td', {}, 'bytes'), el('td', { class: 'num' }, fmtBytes(pr.bytes[0])), el('td', { class: 'num' }, fmtBytes(pr.bytes[1]) + pct(pr.bytes[0], pr.bytes[1]))),
  );
  box.append(el('h3', {}, 'Size'), sizes);
  box.append(
    el('p', { 'data-testid': 'prune-verify' }, `Verified on the probe inputs: max abs error ${fmt(pr.maxAbsError)}, max rel error ${fmt(pr.maxRelError)}${pr.exact ? ' (exact removal of dead/constant units)' : ''}.`),
  );
  for (const n of pr.notes) box.append(el('p', { class: 'muted' }, n));
  for (const s of pr.skipped) box.append(el('p', { class: 'muted' }, `Skipped ${s.layer}: ${s.reason}`));
  const apply = button(`Apply: prune ${pr.removed}`, 'prune-apply-button', () => send({ type: 'pruneApply' }));
  apply.disabled = apply.disabled || pr.removed === 0;
  box.append(el('div', { class: 'toolbar' }, apply, button('Cancel', 'preview-cancel-button', closePreview, true)));
  return box;
}

function swapPreviewView(sp: SwapPreview): HTMLElement {
  const box = el('section', { class: 'preview', 'data-testid': 'swap-preview' });
  box.append(
    el('h3', {}, `Swap activations to ${sp.to}`),
    el(
      'div',
      { class: 'banner warning' },
      'A swap changes the function of a trained model: it is not an equivalence. Fine-tune the model after applying it; the deviation below is what changes before fine-tuning.',
    ),
    el('p', {}, `Swapped ${sp.swapped} activation(s); BatchNorm folded: ${sp.removedBn}; Dropout that would become AlphaDropout: ${sp.replacedDropout}.`),
    el('p', { 'data-testid': 'swap-deviation' }, `Deviation on the probe inputs: max abs ${fmt(sp.maxAbsError)}, max rel ${fmt(sp.maxRelError)}.`),
  );
  const p = palette();
  const c0 = p.series[0] ?? p.fg;
  const c1 = p.series[1] ?? p.fg;
  box.append(
    lineChart(
      'swap-depth-chart',
      sp.profile.map((r) => r.layer),
      [
        { label: 'mean before', values: sp.profile.map((r) => r.meanBefore), color: c0 },
        { label: 'mean after', values: sp.profile.map((r) => r.meanAfter), color: c0, dashed: true },
        { label: 'variance before', values: sp.profile.map((r) => r.varBefore), color: c1 },
        { label: 'variance after', values: sp.profile.map((r) => r.varAfter), color: c1, dashed: true },
      ],
      'Depth profile before / after',
    ),
  );
  for (const n of sp.notes) box.append(el('p', { class: 'muted' }, n));
  for (const s of sp.skipped) box.append(el('p', { class: 'muted' }, `Skipped ${s.layer}: ${s.reason}`));
  const apply = button(`Apply: swap to ${sp.to}`, 'swap-apply-button', () => send({ type: 'swapApply' }));
  apply.disabled = apply.disabled || sp.swapped === 0;
  box.append(el('div', { class: 'toolbar' }, apply, button('Cancel', 'preview-cancel-button', closePreview, true)));
  return box;
}

function closePreview(): void {
  state.preview = null;
  send({ type: 'closePreview' });
  render();
}

// ------------------------------------------------------------------------------------------------ page

function settingsBar(): HTMLElement {
  const s = state.settings;
  const samples = el('input', { type: 'number', min: '1', step: '1', 'data-testid': 'probe-samples', 'aria-label': 'Samples' });
  samples.value = String(s?.samples ?? 32);
  const batch = el('input', { type: 'number', min: '1', step: '1', 'data-testid': 'probe-batch', 'aria-label': 'Batch size' });
  batch.value = String(s?.batchSize ?? 16);
  const source = el('select', { 'data-testid': 'probe-source', 'aria-label': 'Input source' });
  source.append(el('option', { value: 'random' }, 'seeded random'), el('option', { value: 'path' }, 'images folder / .npy / .npz…'));
  source.value = s?.source.kind ?? 'random';
  source.addEventListener('change', () => send({ type: 'chooseSource', kind: source.value === 'path' ? 'path' : 'random' }));
  const run = button('Run probe', 'probe-run-button', () => {
    const n = Math.floor(Number(samples.value));
    const b = Math.floor(Number(batch.value));
    if (!(n > 0) || !(b > 0)) {
      state.message = { kind: 'error', text: 'Samples and batch size must be positive whole numbers.' };
      render();
      return;
    }
    send({ type: 'run', samples: n, batchSize: b });
  });
  return el(
    'div',
    {},
    el('div', { class: 'toolbar' }, el('label', {}, 'Samples ', samples), el('label', {}, 'Batch ', batch), el('label', {}, 'Inputs ', source), run),
    el('p', { class: 'muted' }, `Inputs: ${state.sourceLabel}`),
  );
}

function render(): void {
  const root = document.getElementById('app') ?? document.body;
  root.removeAttribute('aria-busy');
  const page = el('div');
  page.append(el('h2', {}, `Activations — ${state.fileName || 'model'}`), settingsBar());
  if (state.busy) page.append(el('div', { class: 'banner', 'data-testid': 'busy' }, `${state.busy}…`));
  if (state.message) page.append(el('div', { class: `banner ${state.message.kind === 'info' ? '' : state.message.kind}`, 'data-testid': 'status' }, state.message.text));
  const probe = state.probe;
  if (probe) {
    page.append(
      el('p', { 'data-testid': 'probe-summary' }, `${probe.layers.length} activation layers, ${probe.deadUnits} dead or constant unit(s) on ${probe.samples} samples (${probe.source}; ${probe.engine}, ${probe.seconds.toFixed(2)} s).`),
    );
    for (const n of probe.notes) page.append(el('p', { class: 'muted' }, n));
    page.append(
      el(
        'div',
        { class: 'toolbar' },
        button(`Prune ${probe.deadUnits} dead units`, 'prune-dead-button', () => send({ type: 'prunePreview' })),
        button('Swap activation…', 'swap-button', () => send({ type: 'swapPreview' }), true),
      ),
    );
    if (state.preview?.kind === 'prune') page.append(prunePreviewView(state.preview.preview));
    if (state.preview?.kind === 'swap') page.append(swapPreviewView(state.preview.preview));
    if (probe.layers.length === 0) page.append(el('p', { class: 'muted' }, 'No activation layers (ReLU family, GELU, SELU, …) in this model.'));
    else page.append(heatmapSection(probe), layerBars(probe), depthChart(probe));
  } else if (!state.busy) {
    page.append(el('p', { class: 'muted' }, 'No probe yet: Run probe.'));
  }
  root.replaceChildren(page);
}

function onMessage(m: HeatmapHostMessage): void {
  switch (m.type) {
    case 'init':
      state.fileName = m.fileName;
      state.settings = m.settings;
      state.sourceLabel = m.sourceLabel;
      break;
    case 'settings':
      state.settings = m.settings;
      state.sourceLabel = m.sourceLabel;
      break;
    case 'busy':
      state.busy = m.what;
      if (m.what && state.message?.kind === 'error') state.message = null;
      break;
    case 'probe':
      state.probe = m.probe;
      state.preview = null;
      if (state.message?.kind !== 'info') state.message = null;
      state.selected = null;
      break;
    case 'prunePreview':
      state.preview = { kind: 'prune', preview: m.preview };
      if (state.message?.kind === 'info') state.message = null;
      break;
    case 'swapPreview':
      state.preview = { kind: 'swap', preview: m.preview };
      if (state.message?.kind === 'info') state.message = null;
      break;
    case 'applied':
      state.preview = null;
      state.message = { kind: 'info', text: `Applied ${m.label} — save to write the file; Undo reverts it. The heatmap below shows the new model.` };
      break;
    case 'stale':
      state.preview = null;
      state.message = { kind: 'warning', text: m.reason };
      break;
    case 'error':
      state.message = { kind: 'error', text: m.message };
      break;
  }
  render();
}

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  if (isHeatmapHostMessage(event.data)) onMessage(event.data);
});

let resizeTimer: ReturnType<typeof setTimeout> | undefined;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(render, 100);
});
// theme switches change the --vscode-* variables: redraw the canvases
new MutationObserver(() => render()).observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-id'] });

render();
send({ type: 'ready' });
