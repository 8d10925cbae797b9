import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { Finding } from '../src/core/types';
import { fixDescription, fixTitle } from '../src/protocol/fixes';
import { formatNum } from '../src/protocol/format';
import { h, setDisabled } from './dom';

const SEVERITY_LABEL: Record<Finding['severity'], string> = { error: 'Error', warning: 'Warning', info: 'Info' };
const SEVERITY_ICON: Record<Finding['severity'], string> = { error: 'error', warning: 'warning', info: 'info' };
const SEVERITY_RANK: Record<Finding['severity'], number> = { error: 0, warning: 1, info: 2 };
const MAX_LAYERS = 12;

export interface FindingsEvents {
  onLayer(name: string): void;
  /** a fix button: the fix id and the finding it came from */
  onFix(fixId: string, finding: Finding): void;
}

export interface FindingsContext {
  /** fix ids the editor can apply on this model (DocumentView.fixes) */
  fixes: readonly string[];
  editable: boolean;
}

function detailValue(v: number | string): string {
  return typeof v === 'number' ? formatNum(v) : v;
}

/**
 * The findings list: severity icon, code, the explanation, the layers (buttons that select the layer), the
 * numbers behind it, and the fix buttons (the finding's `fix` first; other `fixes` this editor has as
 * secondary buttons). A fix this editor does not have is named, with where to get it.
 */
export function renderFindings(findings: readonly Finding[], ctx: FindingsContext, events: FindingsEvents): HTMLElement {
  const sorted = [...findings].sort((a, b) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity]);
  const counts = { error: 0, warning: 0, info: 0 };
  for (const f of findings) counts[f.severity]++;
  const list = h('ul', { class: 'findings-list' });
  for (const f of sorted) list.append(renderFinding(f, ctx, events));
  const countText = (['error', 'warning', 'info'] as const)
    .filter((s) => counts[s] > 0)
    .map((s) => `${counts[s]} ${SEVERITY_LABEL[s].toLowerCase()}${counts[s] === 1 ? '' : 's'}`)
    .join(', ');
  return h(
    'details',
    { class: 'findings', testid: 'findings', attrs: { open: true } },
    h('summary', null, h('h2', { class: 'inline' }, `Findings (${findings.length})`), countText ? h('span', { class: 'muted' }, ` ${countText}`) : null),
    findings.length ? list : h('p', { class: 'muted' }, 'No findings.'),
  );
}

function renderFinding(f: Finding, ctx: FindingsContext, events: FindingsEvents): HTMLElement {
  const li = h(
    'li',
    { class: `finding ${f.severity}`, testid: 'finding', attrs: { 'data-code': f.code, 'data-severity': f.severity, 'data-layer': f.layers[0] ?? '', tabindex: -1 } },
    h(
      'div',
      { class: 'finding-head' },
      h('span', { class: `codicon codicon-${SEVERITY_ICON[f.severity]} sev-icon ${f.severity}`, attrs: { role: 'img', 'aria-label': SEVERITY_LABEL[f.severity], title: SEVERITY_LABEL[f.severity] } }),
      h('code', { class: 'finding-code' }, f.code),
      h('span', { class: 'finding-message' }, f.message),
    ),
  );
  const meta = h('div', { class: 'finding-meta' });
  if (f.layers.length) {
    const layers = h('span', { class: 'finding-layers' }, h('span', { class: 'muted' }, f.layers.length === 1 ? 'Layer ' : 'Layers '));
    for (const name of f.layers.slice(0, MAX_LAYERS)) {
      const b = h('button', { class: 'link', attrs: { type: 'button', 'aria-label': `Show layer ${name}`, 'data-layer': name } }, name);
      b.addEventListener('click', () => events.onLayer(name));
      layers.append(b, ' ');
    }
    if (f.layers.length > MAX_LAYERS) layers.append(h('span', { class: 'muted' }, `+${f.layers.length - MAX_LAYERS} more`));
    meta.append(layers);
  }
  const details = Object.entries(f.details ?? {});
  if (details.length) {
    meta.append(
      h('span', { class: 'finding-details muted', title: 'The numbers behind this finding' }, details.map(([k, v]) => `${k.replace(/_/g, ' ')}: ${detailValue(v)}`).join(' · ')),
    );
  }
  if (meta.childNodes.length) li.append(meta);

  const ids = [...new Set([...(f.fix ? [f.fix] : []), ...(f.fixes ?? [])])];
  if (ids.length) {
    const actions = h('div', { class: 'finding-actions' });
    const unavailable: string[] = [];
    ids.forEach((id, k) => {
      const primary = k === 0 && f.fix === id;
      const available = ctx.fixes.includes(id);
      if (!available && !primary) {
        unavailable.push(id);
        return;
      }
      const b = h(
        'vscode-button',
        {
          testid: primary ? 'fix-button' : 'fix-alt-button',
          attrs: { secondary: !primary, 'data-fix': id, 'aria-label': `${fixTitle(id)} (fixes ${f.code})` },
        },
        primary ? `Fix: ${fixTitle(id)}` : fixTitle(id),
      );
      setDisabled(b, !available || !ctx.editable);
      b.title = !available
        ? `${fixTitle(id)} (${id}) is not available for this model in the editor (the CLI: model-surgeon fix <model> ${id})`
        : !ctx.editable
          ? 'This file is read-only'
          : `${fixDescription(id)} Opens a preview first.`;
      b.addEventListener('click', () => {
        if (!b.disabled) events.onFix(id, f);
      });
      actions.append(b);
    });
    if (unavailable.length) {
      actions.append(h('span', { class: 'muted small' }, `Also fixes it elsewhere: ${unavailable.map(fixTitle).join(', ')} (other formats / the CLI)`));
    }
    li.append(actions);
  }
  return li;
}

/**
 * Scroll to a finding and mark it (a Problems-panel link): by code and first layer (a model can have one
 * finding of a code per layer), else the first of that code. Returns false when there is none.
 */
export function highlightFinding(root: HTMLElement, code: string, layer: string): boolean {
  for (const el of root.querySelectorAll('.finding.highlight')) el.classList.remove('highlight');
  const all = [...root.querySelectorAll<HTMLElement>('[data-testid="finding"]')].filter((x) => x.dataset.code === code);
  const el = all.find((x) => x.dataset.layer === layer) ?? all[0];
  if (!el) return false;
  const details = el.closest('details');
  if (details) details.open = true;
  el.classList.add('highlight');
  el.scrollIntoView({ block: 'nearest' });
  return true;
}
