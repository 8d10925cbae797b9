/**
 * Number and shape formatting shared by the webview and the host (tree tooltips, quick picks).
 * Pure: no `vscode`, no DOM.
 */

const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 1234567 -> "1,234,567"; null -> "—" */
export function formatInt(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '—' : intFormat.format(n);
}

/** 1234567 -> "1.23 M" (SI, for MACs / params) */
export function formatCompact(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const a = Math.abs(n);
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'K']];
  for (const [scale, unit] of units) {
    if (a >= scale) return `${trimZeros((n / scale).toFixed(2))} ${unit}`;
  }
  return intFormat.format(n);
}

/** bytes -> "12.3 MiB" */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${intFormat.format(v)} B` : `${trimZeros(v.toFixed(2))} ${units[i]}`;
}

/** a float for a stats column: 4 significant digits, exponent form for very small/large magnitudes */
export function formatNum(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? '∞' : '−∞';
  if (n === 0) return '0';
  const a = Math.abs(n);
  if (a < 1e-3 || a >= 1e5) return n.toExponential(2);
  return trimZeros(n.toPrecision(4));
}

/** an error magnitude: always exponent form, e.g. "3.58e-7" */
export function formatError(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return '∞';
  return n === 0 ? '0' : n.toExponential(2);
}

/** fraction 0..1 -> "12.5 %" */
export function formatPct(f: number | null | undefined): string {
  if (f === null || f === undefined || !Number.isFinite(f)) return '—';
  const p = f * 100;
  if (p === 0) return '0 %';
  if (p < 0.1) return '<0.1 %';
  return `${trimZeros(p.toFixed(1))} %`;
}

/** [1, 64, null, "batch"] -> "1×64×?×batch" */
export function formatShape(shape: readonly (number | string | null)[] | null | undefined): string {
  if (!shape) return '?';
  if (shape.length === 0) return 'scalar';
  return shape.map((d) => (d === null ? '?' : String(d))).join('×');
}

/** element count of a static shape; null when any dim is unknown */
export function shapeElements(shape: readonly (number | string | null)[] | null | undefined): number | null {
  if (!shape) return null;
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') return null;
    n *= d;
  }
  return n;
}

/** "before → after (−12.3 %)" */
export function formatDelta(before: number, after: number, fmt: (n: number) => string): string {
  const change = before === 0 ? 0 : ((after - before) / before) * 100;
  const sign = change > 0 ? '+' : change < 0 ? '−' : '±';
  return `${fmt(before)} → ${fmt(after)} (${sign}${trimZeros(Math.abs(change).toFixed(1))} %)`;
}

function trimZeros(s: string): string {
  return s.includes('.') && !s.includes('e') ? s.replace(/\.?0+$/, '') : s;
}
