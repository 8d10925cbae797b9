import type { InspectReport, ModelFormat } from '../src/core/types';
import { formatBytes, formatCompact, formatInt, formatShape } from '../src/protocol/format';
import type { DocumentView, FileState } from '../src/protocol/messages';
import { h } from './dom';

/** "x 1×3×48×192, y 1×10" */
export function formatInputShapes(doc: DocumentView): string {
  return doc.inputShapes.map((i) => `${i.name} ${formatShape(i.shape)}`).join(', ');
}

/** The file on disk: its size; "not saved" when there is no file; marked when the editor has unsaved changes. */
function fileSizeItem(file: FileState): SummaryItem {
  if (file.bytes === null) return { label: 'File size', value: 'not saved', testid: 'file-size' };
  const size = formatBytes(file.bytes);
  return file.saved
    ? { label: 'File size', value: size, testid: 'file-size' }
    : {
        label: 'File size',
        value: `${size} on disk`,
        title: `${size} on disk; this editor has unsaved changes (save to write them)`,
        testid: 'file-size',
      };
}

interface SummaryItem {
  label: string;
  value: string;
  title?: string;
  testid?: string;
}

/** How the summary names each format (the JSON contract's id stays in the tooltip). */
export const FORMAT_LABELS: Record<ModelFormat, string> = {
  onnx: 'ONNX',
  'tfjs-layers': 'TF.js layers model',
  'tfjs-graph': 'TF.js graph model',
  'keras-h5': 'Keras 2 (.h5)',
  keras: 'Keras 3 (.keras)',
};

/** Formats whose weights and shards a TF.js model.json lists (the size on disk is the JSON plus its shards). */
function isTfjs(format: ModelFormat): boolean {
  return format === 'tfjs-layers' || format === 'tfjs-graph';
}

/** What runs the model to verify rewrites. */
function engineItem(doc: DocumentView): SummaryItem {
  if (doc.engine) {
    const what = doc.report.format === 'onnx' ? 'onnxruntime (native)' : `TensorFlow.js, ${doc.engine.replace(/^tfjs-/, '')} backend`;
    return { label: 'Verified with', value: doc.engine, title: `Rewrites are verified by running the model before and after with ${what}`, testid: 'engine' };
  }
  return {
    label: 'Verified with',
    value: 'TensorFlow.js',
    title: 'Rewrites are verified with TensorFlow.js: tfjs-node when it is installed, else the wasm backend, else cpu; the backend used shows here after the first verification',
    testid: 'engine',
  };
}

/**
 * Model summary: format, IR version, opsets, producer, params, MACs, file size on disk, weight bytes, inputs,
 * outputs — and, for inputs with symbolic dims, the concrete input shape the shapes and MACs are for.
 */
export function renderSummary(doc: DocumentView): HTMLElement {
  const report = doc.report;
  const m = report.model;
  const producer = [m.producer, m.producer_version].filter((s) => s).join(' ') || '—';
  const opsets = m.opsets.length ? m.opsets.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ') : '—';
  const io = (values: InspectReport['model']['inputs']) =>
    values.map((v) => `${v.name} ${formatShape(v.shape)} ${v.dtype}`).join(', ') || '—';
  const symbolic = doc.inputDims.length > 0;
  const onnx = report.format === 'onnx';
  const file = fileSizeItem(doc.file);
  if (isTfjs(report.format)) file.title = `${file.title ?? file.value} (model.json and its weight shards)`;
  const items: SummaryItem[] = [
    { label: 'Format', value: FORMAT_LABELS[report.format] ?? report.format, title: `format: ${report.format}`, testid: 'format' },
    ...(onnx
      ? [
          { label: 'IR version', value: m.ir_version === null ? '—' : String(m.ir_version) },
          { label: 'Opsets', value: opsets },
        ]
      : []),
    { label: 'Producer', value: producer },
    engineItem(doc),
    { label: 'Params', value: formatInt(report.totals.params) },
    {
      label: 'MACs',
      value: formatCompact(report.totals.macs),
      ...(symbolic ? { title: `for input ${formatInputShapes(doc)}` } : {}),
    },
    { label: 'Layers', value: formatInt(report.totals.layers) },
    file,
    { label: 'Weight bytes', value: formatBytes(m.weight_bytes) },
    { label: 'Inputs', value: io(m.inputs) },
    { label: 'Outputs', value: io(m.outputs) },
  ];
  if (symbolic) {
    const shapes = formatInputShapes(doc);
    items.push({
      label: 'Shapes for input',
      value: shapes,
      title: `Output shapes and MACs are computed for input ${shapes} (set the symbolic dims under Input dimensions)`,
      testid: 'analysed-input',
    });
  }
  const dl = h('dl', { class: 'summary-grid' });
  for (const it of items) {
    dl.append(h('div', null, h('dt', null, it.label), h('dd', { title: it.title ?? it.value, ...(it.testid ? { testid: it.testid } : {}) }, it.value)));
  }
  return h('section', { class: 'summary', testid: 'summary', attrs: { 'aria-label': 'Model summary' } }, dl);
}

/** The file cannot be opened: one clear line, no stack trace. */
export function renderError(fileName: string | null, message: string): HTMLElement {
  return h(
    'section',
    { class: 'error-view', testid: 'error-view', attrs: { role: 'alert' } },
    h('h1', null, fileName ? `Cannot open ${fileName}` : 'Cannot open this model'),
    h('p', { class: 'error-text' }, message),
    h('p', { class: 'muted' }, 'Details are in the "Model Surgeon" output channel.'),
  );
}
