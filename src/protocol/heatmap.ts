/**
 * Messages between the host and the Probe Activations (dead neurons) panel: webview-heatmap/ <-> src/extension/heatmapPanel.ts.
 * Only summaries cross: per-channel statistics of the activation layers, never tensors. No `vscode`, no DOM.
 */

/** Where the probe samples come from: seeded random normal(0, 1), or a folder of images / an .npy / .npz file. */
export type ProbeSourceSetting = { kind: 'random'; seed: number } | { kind: 'path'; path: string };

/** The probe's settings, remembered per model file. */
export interface ProbeSettings {
  samples: number;
  batchSize: number;
  source: ProbeSourceSetting;
}

export const DEFAULT_PROBE_SETTINGS: ProbeSettings = { samples: 32, batchSize: 16, source: { kind: 'random', seed: 1 } };
export const MAX_PROBE_SAMPLES = 100_000;

/** Per-channel statistics of one activation layer. */
export interface HeatmapLayer {
  name: string;
  op: string;
  shape: number[];
  channels: number;
  /** channel indices never positive on any probe */
  dead: number[];
  /** channel indices with the same value on every probe (and not dead) */
  constant: number[];
  apoz: number[];
  mean: number[];
  max: number[];
  layer_mean: number;
  layer_var: number;
}

export interface ProbeSummary {
  fileName: string;
  layers: HeatmapLayer[];
  samples: number;
  batchSize: number;
  source: string;
  engine: string;
  seconds: number;
  /** dead + constant channels over every layer (what "Prune dead units" looks at) */
  deadUnits: number;
  notes: string[];
}

export interface PrunePreview {
  /** channels removed in total (sum of removedPerLayer) */
  removed: number;
  removedPerLayer: { layer: string; removed: number }[];
  params: [number, number];
  /** null when a shape is unknown */
  macs: [number | null, number | null];
  bytes: [number, number];
  maxAbsError: number;
  maxRelError: number;
  exact: boolean;
  notes: string[];
  skipped: { layer: string; reason: string }[];
}

export type SwapTarget = 'selu' | 'elu' | 'gelu' | 'leaky-relu';
export const SWAP_TARGETS: readonly SwapTarget[] = ['selu', 'elu', 'gelu', 'leaky-relu'];

export interface SwapPreview {
  to: SwapTarget;
  swapped: number;
  removedBn: number;
  replacedDropout: number;
  maxAbsError: number;
  maxRelError: number;
  profile: { layer: string; opBefore: string; opAfter: string | null; meanBefore: number; varBefore: number; meanAfter: number | null; varAfter: number | null }[];
  notes: string[];
  skipped: { layer: string; reason: string }[];
}

export type HeatmapHostMessage =
  | { type: 'init'; fileName: string; settings: ProbeSettings; sourceLabel: string }
  | { type: 'settings'; settings: ProbeSettings; sourceLabel: string }
  | { type: 'busy'; what: string | null }
  | { type: 'probe'; probe: ProbeSummary }
  | { type: 'prunePreview'; preview: PrunePreview }
  | { type: 'swapPreview'; preview: SwapPreview }
  | { type: 'applied'; label: string }
  | { type: 'stale'; reason: string }
  | { type: 'error'; message: string };

export type HeatmapWebviewMessage =
  | { type: 'ready' }
  | { type: 'run'; samples: number; batchSize: number }
  | { type: 'chooseSource'; kind: 'random' | 'path' }
  | { type: 'prunePreview' }
  | { type: 'pruneApply' }
  | { type: 'swapPreview' }
  | { type: 'swapApply' }
  | { type: 'closePreview' }
  | { type: 'reveal'; layer: string; channel: number };

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}

const isPositiveInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;

/** Structural check of a message the host receives from the panel. */
export function isHeatmapWebviewMessage(x: unknown): x is HeatmapWebviewMessage {
  if (!isRecord(x) || typeof x.type !== 'string') return false;
  switch (x.type) {
    case 'ready':
    case 'prunePreview':
    case 'pruneApply':
    case 'swapPreview':
    case 'swapApply':
    case 'closePreview':
      return true;
    case 'run':
      return isPositiveInt(x.samples) && isPositiveInt(x.batchSize);
    case 'chooseSource':
      return x.kind === 'random' || x.kind === 'path';
    case 'reveal':
      return typeof x.layer === 'string' && typeof x.channel === 'number';
    default:
      return false;
  }
}

const HOST_TYPES = new Set<string>(['init', 'settings', 'busy', 'probe', 'prunePreview', 'swapPreview', 'applied', 'stale', 'error']);

/** Structural check of a message the panel receives from the host (the host is trusted; this filters foreign posts). */
export function isHeatmapHostMessage(x: unknown): x is HeatmapHostMessage {
  return isRecord(x) && typeof x.type === 'string' && HOST_TYPES.has(x.type);
}

/** Sanitized settings read back from storage (anything unexpected falls back to the defaults). */
export function sanitizeProbeSettings(x: unknown): ProbeSettings {
  if (!isRecord(x)) return { ...DEFAULT_PROBE_SETTINGS };
  const samples = isPositiveInt(x.samples) ? Math.min(x.samples, MAX_PROBE_SAMPLES) : DEFAULT_PROBE_SETTINGS.samples;
  const batchSize = isPositiveInt(x.batchSize) ? Math.min(x.batchSize, 4096) : DEFAULT_PROBE_SETTINGS.batchSize;
  const s = x.source;
  let source: ProbeSourceSetting = DEFAULT_PROBE_SETTINGS.source;
  if (isRecord(s) && s.kind === 'path' && typeof s.path === 'string' && s.path) source = { kind: 'path', path: s.path };
  else if (isRecord(s) && s.kind === 'random' && typeof s.seed === 'number' && Number.isInteger(s.seed)) source = { kind: 'random', seed: s.seed };
  return { samples, batchSize, source };
}

/** The input source in words. */
export function sourceLabel(s: ProbeSourceSetting): string {
  return s.kind === 'random' ? `seeded random normal(0, 1), seed ${s.seed}` : s.path;
}
