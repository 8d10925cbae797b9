/**
 * Small helpers over layer reports, shared by the webview table and host quick picks. Pure: no vscode, no DOM.
 */
import type { LayerReport, TensorSummary } from '../core/types';
import { formatCompact, formatInt, formatNum, formatPct } from './format';

const ROLE_ORDER = ['kernel', 'weight', 'gamma'] as const;

/** The tensor whose stats represent the layer in the table: kernel/weight, BN gamma, else the first with stats. */
export function primaryWeight(layer: LayerReport): TensorSummary | null {
  for (const role of ROLE_ORDER) {
    const t = layer.weights.find((w) => w.role === role && w.stats);
    if (t) return t;
  }
  return layer.weights.find((w) => w.stats) ?? null;
}

/** Number of BN channels flagged for ~0 variance or ~0 gamma (a channel flagged twice counts once). */
export function flaggedChannels(layer: LayerReport): number[] {
  const bn = layer.batchnorm;
  if (!bn) return [];
  return [...new Set([...bn.low_variance_channels, ...bn.low_gamma_channels])].sort((a, b) => a - b);
}

/** One line of statistics for a layer (quick pick detail, tooltips). */
export function layerStatsLine(layer: LayerReport): string {
  const parts = [`params ${formatInt(layer.params)}`, `MACs ${formatCompact(layer.macs)}`];
  const s = primaryWeight(layer)?.stats;
  if (s) {
    parts.push(
      `mean ${formatNum(s.mean)}`,
      `std ${formatNum(s.std)}`,
      `min ${formatNum(s.min)}`,
      `max ${formatNum(s.max)}`,
      `zero ${formatPct(s.zero_fraction)}`,
      `near-zero ${formatPct(s.near_zero_fraction)}`,
    );
  }
  const bn = layer.batchnorm;
  if (bn) {
    if (bn.gamma) parts.push(`γ [${formatNum(bn.gamma.min)}, ${formatNum(bn.gamma.max)}]`);
    if (bn.running_var) parts.push(`var [${formatNum(bn.running_var.min)}, ${formatNum(bn.running_var.max)}]`);
    const flagged = flaggedChannels(layer).length;
    if (flagged) parts.push(`${flagged} flagged channel${flagged === 1 ? '' : 's'}`);
  }
  return parts.join(' · ');
}
