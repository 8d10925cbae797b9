import type { Finding, InspectReport } from '../src/core/types';
import { formatBytes, formatCompact, formatInt, formatShape } from '../src/protocol/format';
import { h } from './dom';

/** Model summary: format, IR version, opsets, producer, params, MACs, file size, weight bytes. */
export function renderSummary(report: InspectReport): HTMLElement {
  const m = report.model;
  const producer = [m.producer, m.producer_version].filter((s) => s).join(' ') || '—';
  const opsets = m.opsets.length ? m.opsets.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ') : '—';
  const io = (values: InspectReport['model']['inputs']) =>
    values.map((v) => `${v.name} ${formatShape(v.shape)} ${v.dtype}`).join(', ') || '—';
  const items: [string, string][] = [
    ['Format', report.format],
    ['IR version', m.ir_version === null ? '—' : String(m.ir_version)],
    ['Opsets', opsets],
    ['Producer', producer],
    ['Params', formatInt(report.totals.params)],
    ['MACs', formatCompact(report.totals.macs)],
    ['Layers', formatInt(report.totals.layers)],
    ['File size', m.file_bytes === null ? 'not saved' : formatBytes(m.file_bytes)],
    ['Weight bytes', formatBytes(m.weight_bytes)],
    ['Inputs', io(m.inputs)],
    ['Outputs', io(m.outputs)],
  ];
  const dl = h('dl', { class: 'summary-grid' });
  for (const [k, v] of items) dl.append(h('div', null, h('dt', null, k), h('dd', { title: v }, v)));
  return h('section', { class: 'summary', testid: 'summary', attrs: { 'aria-label': 'Model summary' } }, dl);
}

const SEVERITY_LABEL: Record<Finding['severity'], string> = { error: 'Error', warning: 'Warning', info: 'Info' };
const SEVERITY_RANK: Record<Finding['severity'], number> = { error: 0, warning: 1, info: 2 };

/** Findings; layer names are buttons that select the layer. */
export function renderFindings(findings: Finding[], onLayer: (name: string) => void): HTMLElement {
  const sorted = [...findings].sort((a, b) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity]);
  const list = h('ul', { class: 'findings-list' });
  for (const f of sorted) {
    const li = h(
      'li',
      { class: `finding ${f.severity}` },
      h('span', { class: `badge ${f.severity}` }, SEVERITY_LABEL[f.severity]),
      ' ',
      h('code', null, f.code),
      ' ',
      f.message,
    );
    if (f.layers.length) {
      const layers = h('span', { class: 'finding-layers' });
      for (const name of f.layers.slice(0, 12)) {
        const b = h('button', { class: 'link', attrs: { type: 'button', 'aria-label': `Show layer ${name}` } }, name);
        b.addEventListener('click', () => onLayer(name));
        layers.append(b, ' ');
      }
      if (f.layers.length > 12) layers.append(h('span', { class: 'muted' }, `+${f.layers.length - 12} more`));
      li.append(' ', layers);
    }
    list.append(li);
  }
  return h(
    'details',
    { class: 'findings', testid: 'findings', attrs: { open: true } },
    h('summary', null, h('h2', { class: 'inline' }, `Findings (${findings.length})`)),
    findings.length ? list : h('p', { class: 'muted' }, 'No findings.'),
  );
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
