import { h, themeColor } from './dom';

export interface BarChartOptions {
  values: readonly number[];
  /** accessible name (the canvas is an image) */
  label: string;
  /** bar colour: a --vscode-* variable */
  colorVar: string;
  /** indices drawn in the highlight colour (flagged channels, the peak layer) */
  highlight?: ReadonlySet<number>;
  highlightVar?: string;
  /** axis labels under the left and right ends */
  left: string;
  right: string;
  /** text for the hover line, per index */
  describe?: (i: number) => string;
  /** a click on a bar */
  onClick?: (i: number) => void;
  width?: number;
  height?: number;
  testid?: string;
}

/**
 * A bar chart on canvas, coloured from the theme. Signed values get a zero line; with more values than
 * pixels, each pixel column shows the value of largest magnitude in its bucket (highlighted if any of its
 * indices is). Hovering shows the value under the pointer in a line below the chart; bars can be clicked.
 */
export function barChart(o: BarChartOptions): HTMLElement {
  const W = o.width ?? 560;
  const H = o.height ?? 110;
  const dpr = Math.max(1, Math.min(3, window.devicePixelRatio || 1));
  const canvas = h('canvas', { class: 'chart wide', attrs: { role: 'img', 'aria-label': o.label, ...(o.testid ? { 'data-testid': o.testid } : {}) } });
  canvas.width = W * dpr;
  canvas.height = H * dpr;
  canvas.style.maxWidth = `${W}px`;
  const hover = h('p', { class: 'chart-hover muted small', attrs: { 'aria-live': 'off' } }, '\u00a0');
  const n = o.values.length;
  const buckets = Math.max(1, Math.min(n, W));
  const per = n / buckets;
  const range = (b: number): [number, number] => [Math.floor(b * per), Math.max(Math.floor((b + 1) * per), Math.floor(b * per) + 1)];
  const ctx = canvas.getContext('2d');
  if (ctx && n > 0) {
    ctx.scale(dpr, dpr);
    const bar = themeColor(o.colorVar, themeColor('--vscode-focusBorder', 'gray'));
    const hi = themeColor(o.highlightVar ?? '--vscode-charts-orange', 'orange');
    const axis = themeColor('--vscode-descriptionForeground', 'gray');
    const vals: number[] = [];
    const flagged: boolean[] = [];
    let max = 0;
    let min = 0;
    for (let b = 0; b < buckets; b++) {
      const [i0, i1] = range(b);
      let v = 0;
      let f = false;
      for (let i = i0; i < i1; i++) {
        const x = o.values[i] ?? 0;
        if (Number.isFinite(x) && Math.abs(x) > Math.abs(v)) v = x;
        if (o.highlight?.has(i)) f = true;
      }
      vals.push(v);
      flagged.push(f);
      if (v > max) max = v;
      if (v < min) min = v;
    }
    const plotH = H - 14;
    const span = max - min || 1;
    const zeroY = (max / span) * plotH;
    const w = W / buckets;
    for (let b = 0; b < buckets; b++) {
      const v = vals[b]!;
      const bh = (Math.abs(v) / span) * plotH;
      ctx.fillStyle = flagged[b] ? hi : bar;
      const y = v >= 0 ? zeroY - bh : zeroY;
      ctx.fillRect(b * w, y, Math.max(1, w - (w > 3 ? 1 : 0)), Math.max(bh, flagged[b] ? 2 : 0));
    }
    ctx.fillStyle = axis;
    ctx.fillRect(0, Math.round(zeroY), W, 1);
    ctx.font = `10px ${themeColor('--vscode-font-family', 'sans-serif')}`;
    ctx.textBaseline = 'bottom';
    ctx.textAlign = 'left';
    ctx.fillText(o.left, 0, H);
    ctx.textAlign = 'right';
    ctx.fillText(o.right, W, H);
  }
  const indexAt = (e: MouseEvent): number | null => {
    const rect = canvas.getBoundingClientRect();
    if (rect.width <= 0 || n === 0) return null;
    const b = Math.floor(((e.clientX - rect.left) / rect.width) * buckets);
    if (b < 0 || b >= buckets) return null;
    const [i0, i1] = range(b);
    // the index of largest magnitude in the bucket: what the bar shows
    let best = i0;
    for (let i = i0; i < i1; i++) if (Math.abs(o.values[i] ?? 0) > Math.abs(o.values[best] ?? 0)) best = i;
    return best;
  };
  if (o.describe) {
    const describe = o.describe;
    canvas.addEventListener('mousemove', (e) => {
      const i = indexAt(e);
      hover.textContent = i === null ? '\u00a0' : describe(i);
    });
    canvas.addEventListener('mouseleave', () => {
      hover.textContent = '\u00a0';
    });
  }
  if (o.onClick) {
    const onClick = o.onClick;
    canvas.classList.add('clickable');
    canvas.addEventListener('click', (e) => {
      const i = indexAt(e);
      if (i !== null) onClick(i);
    });
  }
  return h('figure', { class: 'chart-wrap' }, canvas, hover);
}
