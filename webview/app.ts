import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { Finding, LayerReport } from '../src/core/types';
import { TOOLBAR_FIXES } from '../src/protocol/fixes';
import type {
  DocumentChange,
  DocumentView,
  FixPreview,
  FixSettings,
  FoldPreview,
  FreezePreview,
  HostToWebview,
  ReplyTo,
  WebviewRequest,
  WebviewToHost,
} from '../src/protocol/messages';
import type { Messenger } from '../src/protocol/messenger';
import { BatchNormPanel } from './batchnorm';
import { renderDetail } from './detail';
import { DimsControl } from './dims';
import { clear, h, setDisabled } from './dom';
import { highlightFinding, renderFindings } from './findings';
import { FixPanel } from './fix';
import { FoldPanel } from './fold';
import { FreezePanel } from './freeze';
import { DEFAULT_PLANNER_FIELDS, PlannerPanel, type PlannerFields } from './planner';
import { COLUMN_KEYS, LayerTable, type SortState } from './table';
import { renderError, renderSummary } from './views';

export type TabKey = 'layers' | 'batchnorm' | 'planner';
const TABS: [TabKey, string][] = [
  ['layers', 'Layers'],
  ['batchnorm', 'BatchNorm'],
  ['planner', 'Memory & batch size'],
];

/** What survives the webview being hidden/reloaded (VS Code keeps it through getState/setState). */
export interface PersistedState {
  selected: string | null;
  sort: SortState;
  tab: TabKey;
  planner: PlannerFields;
}

function restorePlanner(raw: unknown): PlannerFields {
  const d = DEFAULT_PLANNER_FIELDS;
  if (typeof raw !== 'object' || raw === null) return d;
  const r = raw as Record<string, unknown>;
  const intOrNull = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 1 ? v : null);
  return {
    height: intOrNull(r.height),
    width: intOrNull(r.width),
    batch: intOrNull(r.batch),
    gpuGiB: typeof r.gpuGiB === 'number' && r.gpuGiB > 0 ? r.gpuGiB : d.gpuGiB,
    optimizer: r.optimizer === 'sgd' || r.optimizer === 'sgd-momentum' || r.optimizer === 'none' || r.optimizer === 'adam' ? r.optimizer : d.optimizer,
    dtypeBytes: r.dtypeBytes === 2 ? 2 : 4,
    crops: typeof r.crops === 'string' ? r.crops : d.crops,
  };
}

export function restoreState(raw: unknown): PersistedState {
  const fallback: PersistedState = { selected: null, sort: { key: 'index', dir: 'asc' }, tab: 'layers', planner: DEFAULT_PLANNER_FIELDS };
  if (typeof raw !== 'object' || raw === null) return fallback;
  const r = raw as Partial<Record<keyof PersistedState, unknown>>;
  const selected = typeof r.selected === 'string' ? r.selected : null;
  const s = r.sort as Partial<Record<keyof SortState, unknown>> | undefined;
  const sort =
    s && typeof s.key === 'string' && COLUMN_KEYS.has(s.key) && (s.dir === 'asc' || s.dir === 'desc')
      ? ({ key: s.key, dir: s.dir } as SortState)
      : fallback.sort;
  const tab = TABS.find(([k]) => k === r.tab)?.[0] ?? 'layers';
  return { selected, sort, tab, planner: restorePlanner(r.planner) };
}

/** Parts of the page that exist while a model is shown. */
interface Shell {
  title: HTMLElement;
  foldButton: HTMLElementTagNameMap['vscode-button'];
  freezeButton: HTMLElementTagNameMap['vscode-button'];
  summary: HTMLElement;
  dims: DimsControl;
  foldHost: HTMLElement;
  freezeHost: HTMLElement;
  fixHost: HTMLElement;
  findings: HTMLElement;
  detail: HTMLElement;
  status: HTMLElement;
  table: LayerTable;
  tabButtons: Map<TabKey, HTMLButtonElement>;
  tabPanels: Map<TabKey, HTMLElement>;
  batchnorm: BatchNormPanel;
  planner: PlannerPanel;
}

export class App {
  private doc: DocumentView | null = null;
  private shell: Shell | null = null;
  private fold: FoldPanel | null = null;
  private requestingFold = false;
  private freeze: FreezePanel | null = null;
  private requestingFreeze = false;
  private fix: FixPanel | null = null;
  private requestingFix = false;
  /** increases with every document shown; a tab panel loaded at an older one is stale */
  private docGeneration = 0;
  private readonly loadedAt = new Map<TabKey, number>();
  /** what the status line shows: the "Applied … Use Undo" banner is tied to the edit and goes with it */
  private statusKind: 'applied' | 'other' | null = null;

  constructor(
    private readonly root: HTMLElement,
    private readonly messenger: Messenger<WebviewToHost, HostToWebview>,
    private state: PersistedState,
    private readonly saveState: (s: PersistedState) => void,
  ) {}

  private request<R extends WebviewRequest>(body: R): Promise<ReplyTo<R>> {
    return this.messenger.request(body) as Promise<ReplyTo<R>>;
  }

  /** The handshake: nothing is posted to us before we asked. */
  async start(): Promise<void> {
    const init = await this.request({ type: 'ready' });
    this.onMessage(init);
  }

  onMessage(msg: HostToWebview): void {
    switch (msg.type) {
      case 'init':
        this.root.removeAttribute('aria-busy');
        if (msg.document) this.showDocument(msg.document);
        else this.showError(msg.fileName, msg.loadError ?? 'The model could not be opened.');
        if (msg.document && msg.foldPreview) this.showFoldPreview(msg.foldPreview, false);
        if (msg.document && msg.freezePreview) this.showFreezePreview(msg.freezePreview, false);
        if (msg.document && msg.fixPreview) this.showFixPreview(msg.fixPreview, false);
        if (this.state.selected && this.shell) this.shell.table.select(this.state.selected, { scroll: true });
        break;
      case 'documentChanged':
        this.showDocument(msg.document);
        this.onDocumentChange(msg.change);
        break;
      case 'loadError':
        this.showError(msg.fileName, msg.message);
        break;
      case 'revealLayer':
        this.revealLayer(msg.layer, msg.finding);
        break;
      case 'foldPreview':
        this.showFoldPreview(msg.preview, true);
        break;
      case 'foldVerification':
        if (this.fold?.preview.previewId === msg.previewId) this.fold.setVerification(msg.verification);
        if (msg.verification.state === 'done') this.onEngineKnown(msg.verification.report.engine);
        break;
      case 'freezePreview':
        this.showFreezePreview(msg.preview, true);
        break;
      case 'freezeClosed':
        if (this.freeze?.preview.previewId === msg.previewId) {
          this.closeFreeze();
          if (msg.reason === 'stale') this.setStatus('The model changed, so the Freeze BatchNorm preview was closed.');
        }
        break;
      case 'foldClosed':
        if (this.fold?.preview.previewId === msg.previewId) {
          this.closeFold();
          if (msg.reason === 'stale') this.setStatus('The model changed, so the Fold BatchNorm preview was closed.');
          if (msg.reason === 'dims') {
            this.setStatus('The input dimensions changed, so the Fold BatchNorm preview was closed; run it again to verify at the new size.');
          }
        }
        break;
      case 'fixPreview':
        this.showFixPreview(msg.preview, true);
        break;
      case 'fixVerification':
        if (this.fix?.preview.previewId === msg.previewId) this.fix.setVerification(msg);
        if (msg.verification.state === 'done') this.onEngineKnown(msg.verification.report.engine);
        break;
      case 'fixClosed':
        if (this.fix?.preview.previewId === msg.previewId) {
          const title = this.fix.preview.title;
          this.closeFix();
          if (msg.reason === 'stale') this.setStatus(`The model changed, so the ${title} preview was closed.`);
          if (msg.reason === 'dims') this.setStatus(`The input dimensions changed, so the ${title} preview was closed; run it again to verify at the new size.`);
        }
        break;
      case 'foldApplied':
      case 'freezeApplied':
      case 'fixApplied':
      case 'audit':
      case 'batchNormChannels':
      case 'memoryPlan':
      case 'inputDimsSet':
      case 'error':
        // replies; handled where the request was made
        break;
      default: {
        const unknown: never = msg;
        console.warn('Model Surgeon: unknown message', unknown);
      }
    }
  }

  // ------------------------------------------------------------------------------------------------------------

  private buildShell(): Shell {
    clear(this.root);
    const foldButton = h('vscode-button', { testid: 'fold-button', attrs: { 'aria-label': 'Fold BatchNorm' } }, 'Fold BatchNorm');
    foldButton.addEventListener('click', () => void this.requestFold());
    const freezeButton = h('vscode-button', { testid: 'freeze-button', attrs: { secondary: true, 'aria-label': 'Freeze BatchNorm', hidden: true } }, 'Freeze BatchNorm');
    freezeButton.addEventListener('click', () => void this.requestFreeze());
    const title = h('h1', { class: 'title' });
    const status = h('div', { class: 'status', testid: 'status', attrs: { role: 'status', 'aria-live': 'polite' } });
    const detail = h('aside', { class: 'detail', attrs: { 'aria-label': 'Selected layer', 'aria-live': 'polite' } });
    const table = new LayerTable(this.state.sort, {
      onSelect: (layer) => this.onSelect(layer),
      onSort: (sort) => {
        this.state = { ...this.state, sort };
        this.saveState(this.state);
      },
    });
    const summary = h('div');
    const dims = new DimsControl(async (values) => {
      try {
        const reply = await this.request({ type: 'setInputDims', dims: values });
        return reply.type === 'error' ? reply.message : null;
      } catch (err) {
        return err instanceof Error ? err.message : String(err);
      }
    });
    const foldHost = h('div');
    const freezeHost = h('div');
    const fixHost = h('div');
    const findings = h('div');
    const batchnorm = new BatchNormPanel({
      requestAudit: async (batchSize) => {
        const reply = await this.requestOrError({ type: 'requestAudit', batchSize });
        return typeof reply === 'string' ? reply : reply.type === 'audit' ? reply.report : reply.message;
      },
      requestChannels: async (layer) => {
        const reply = await this.requestOrError({ type: 'requestBatchNormChannels', layer });
        return typeof reply === 'string' ? reply : reply.type === 'batchNormChannels' ? reply.channels : reply.message;
      },
      onLayer: (name) => this.revealLayer(name),
    });
    const planner = new PlannerPanel(
      this.state.planner,
      this.doc?.report.format ?? 'onnx',
      {
        requestPlan: async (settings) => {
          const reply = await this.requestOrError({ type: 'requestMemoryPlan', settings });
          return typeof reply === 'string' ? reply : reply.type === 'memoryPlan' ? reply.report : reply.message;
        },
        onLayer: (name) => this.revealLayer(name),
      },
      (fields) => {
        this.state = { ...this.state, planner: fields };
        this.saveState(this.state);
      },
    );
    const layersPanel = h('div', { class: 'split tab-panel', testid: 'layers-panel' }, h('div', { class: 'table-wrap' }, table.element), detail);
    const tabPanels = new Map<TabKey, HTMLElement>([
      ['layers', layersPanel],
      ['batchnorm', batchnorm.element],
      ['planner', planner.element],
    ]);
    const tabButtons = new Map<TabKey, HTMLButtonElement>();
    const tabList = h('div', { class: 'tabs', attrs: { role: 'tablist', 'aria-label': 'Views' } });
    for (const [key, label] of TABS) {
      const b = h('button', { class: 'tab', testid: `tab-${key}`, attrs: { type: 'button', role: 'tab', id: `tab-${key}`, 'aria-controls': `panel-${key}` } }, label);
      b.addEventListener('click', () => this.showTab(key));
      b.addEventListener('keydown', (e) => {
        const i = TABS.findIndex(([k]) => k === key);
        const next = e.key === 'ArrowRight' ? TABS[(i + 1) % TABS.length] : e.key === 'ArrowLeft' ? TABS[(i + TABS.length - 1) % TABS.length] : undefined;
        if (next) {
          e.preventDefault();
          this.showTab(next[0]);
          tabButtons.get(next[0])?.focus();
        }
      });
      tabButtons.set(key, b);
      tabList.append(b);
      const panel = tabPanels.get(key)!;
      panel.id = `panel-${key}`;
      panel.setAttribute('role', 'tabpanel');
      panel.setAttribute('aria-labelledby', `tab-${key}`);
    }
    this.root.append(
      h('header', { class: 'toolbar' }, title, h('div', { class: 'toolbar-actions' }, foldButton, freezeButton)),
      summary,
      dims.element,
      foldHost,
      freezeHost,
      fixHost,
      findings,
      status,
      tabList,
      layersPanel,
      batchnorm.element,
      planner.element,
    );
    return {
      title, foldButton, freezeButton, summary, dims, foldHost, freezeHost, fixHost, findings, detail, status, table,
      tabButtons, tabPanels, batchnorm, planner,
    };
  }

  /** A request whose failure (closed editor, error reply) becomes one line of text. */
  private async requestOrError<R extends WebviewRequest>(body: R): Promise<ReplyTo<R> | string> {
    try {
      return await this.request(body);
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  /** Switch the view under the findings; the BatchNorm and planner views load (again) when shown after a change. */
  private showTab(key: TabKey): void {
    const s = this.shell;
    if (!s) return;
    if (this.state.tab !== key) {
      this.state = { ...this.state, tab: key };
      this.saveState(this.state);
    }
    for (const [k, b] of s.tabButtons) {
      b.setAttribute('aria-selected', String(k === key));
      b.tabIndex = k === key ? 0 : -1;
    }
    for (const [k, p] of s.tabPanels) p.hidden = k !== key;
    if (key !== 'layers' && this.loadedAt.get(key) !== this.docGeneration) {
      this.loadedAt.set(key, this.docGeneration);
      if (key === 'batchnorm') void s.batchnorm.load();
      else void s.planner.load();
    }
  }

  private showDocument(doc: DocumentView): void {
    this.doc = doc;
    if (!this.shell) this.shell = this.buildShell();
    const s = this.shell;
    const { report, foldPlan } = doc;
    s.title.textContent = doc.fileName;
    const n = foldPlan.candidates.length;
    s.foldButton.textContent = `Fold BatchNorm (${n} foldable)`;
    s.foldButton.setAttribute('aria-label', `Fold BatchNorm: ${n} foldable`);
    setDisabled(s.foldButton, !doc.editable || (n === 0 && foldPlan.skipped.length === 0));
    s.foldButton.title = !doc.editable
      ? 'This file is read-only'
      : n === 0 && foldPlan.skipped.length === 0
        ? 'This model has no BatchNorm layers'
        : 'Preview and verify folding BatchNorm into neighbouring layers';
    this.updateFreezeButton(doc);
    s.summary.replaceChildren(renderSummary(doc));
    s.dims.update(doc);
    s.findings.replaceChildren(
      renderFindings(report.findings, { fixes: doc.fixes, editable: doc.editable }, {
        onLayer: (name) => this.revealLayer(name),
        onFix: (fixId, finding) => void this.onFix(fixId, finding),
      }),
    );
    s.table.setLayers(report.layers);
    s.planner.setFormat(report.format);
    this.docGeneration++;
    this.showTab(this.state.tab);
    const selected = this.state.selected;
    if (selected !== null && s.table.getLayer(selected)) {
      s.table.select(selected, { notify: false });
      this.renderDetailFor(s.table.getLayer(selected) ?? null);
    } else {
      this.renderDetailFor(null);
      if (selected !== null) this.updateSelection(null);
    }
  }

  /** Freeze BatchNorm: only for the Keras-family formats; disabled when nothing is left to freeze. */
  private updateFreezeButton(doc: DocumentView): void {
    const b = this.shell?.freezeButton;
    if (!b) return;
    const f = doc.freeze;
    b.hidden = f === null;
    if (!f) return;
    b.textContent = f.freezable > 0 ? `Freeze BatchNorm (${f.freezable})` : 'Freeze BatchNorm';
    b.setAttribute('aria-label', `Freeze BatchNorm: ${f.freezable} trainable`);
    setDisabled(b, !doc.editable || f.freezable === 0);
    b.title = !doc.editable
      ? 'This file is read-only'
      : f.batchnorms === 0
        ? 'This model has no BatchNorm layers'
        : f.freezable === 0
          ? 'Every BatchNorm layer is frozen already (trainable: false)'
          : 'Set trainable: false on every BatchNorm, so Keras runs them in inference mode while fine-tuning';
  }

  /** A verification reported the engine that ran it: the summary's "Verified with" shows it. */
  private onEngineKnown(engine: string): void {
    if (!this.doc || !this.shell || this.doc.engine === engine) return;
    this.doc = { ...this.doc, engine };
    this.shell.summary.replaceChildren(renderSummary(this.doc));
  }

  private showError(fileName: string | null, message: string): void {
    this.doc = null;
    this.shell = null;
    this.fold = null;
    this.freeze = null;
    this.fix = null;
    this.loadedAt.clear();
    this.statusKind = null;
    this.root.replaceChildren(renderError(fileName, message));
  }

  private onSelect(layer: LayerReport | null): void {
    this.renderDetailFor(layer);
    this.updateSelection(layer?.name ?? null);
    if (layer?.op === 'BatchNorm') this.shell?.batchnorm.prefer(layer.name);
  }

  private updateSelection(name: string | null): void {
    this.state = { ...this.state, selected: name };
    this.saveState(this.state);
    this.messenger.sendEvent({ type: 'layerSelected', layer: name });
  }

  private renderDetailFor(layer: LayerReport | null): void {
    this.shell?.detail.replaceChildren(renderDetail(layer));
  }

  /** Redraw theme-dependent canvases (the histogram colours come from --vscode-* variables). */
  onThemeChanged(): void {
    const name = this.shell?.table.selectedName;
    if (this.shell && name) this.renderDetailFor(this.shell.table.getLayer(name) ?? null);
    this.shell?.batchnorm.redraw();
    this.shell?.planner.redraw();
  }

  /** Select a layer in the layer table (switching to it); from a Problems-panel link also show the finding. */
  private revealLayer(name: string, finding?: string): void {
    if (!this.shell) return;
    const foundFinding = finding !== undefined ? highlightFinding(this.shell.findings, finding, name) : true;
    if (name === '') {
      this.setStatus(foundFinding ? '' : `The finding ${finding ?? ''} is no longer reported for this model.`);
      return;
    }
    this.showTab('layers');
    if (this.shell.table.select(name, { scroll: true, focus: true })) {
      this.setStatus(foundFinding ? '' : `The finding ${finding ?? ''} is no longer reported for this model.`);
    } else {
      this.setStatus(`Layer "${name}" is not in this model.`);
    }
  }

  private setStatus(text: string, kind: 'applied' | 'other' = 'other'): void {
    if (!this.shell) return;
    this.shell.status.textContent = text;
    this.statusKind = text ? kind : null;
  }

  /**
   * Keep the status line true: "Applied X. Use Undo…" holds only while that edit is the current, unsaved
   * state, so undo, revert, a reload from disk and save take it away; redo brings it back.
   */
  private onDocumentChange(change: DocumentChange): void {
    switch (change.reason) {
      case 'edit':
      case 'redo':
        if (change.label) this.setStatus(appliedText(change.label), 'applied');
        break;
      case 'undo':
      case 'revert':
      case 'reload':
      case 'save':
        if (this.statusKind === 'applied') this.setStatus('');
        break;
      case 'dims':
      case 'disk':
        break;
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Fold BatchNorm

  private async requestFold(): Promise<void> {
    if (this.requestingFold || !this.shell) return;
    this.requestingFold = true;
    this.shell.foldButton.setAttribute('aria-busy', 'true');
    try {
      const reply = await this.request({ type: 'requestFoldPreview' });
      if (reply.type === 'error') this.setStatus(reply.message);
      else this.showFoldPreview(reply.preview, true);
    } catch (err) {
      this.setStatus(err instanceof Error ? err.message : String(err));
    } finally {
      this.requestingFold = false;
      this.shell?.foldButton.removeAttribute('aria-busy');
    }
  }

  private showFoldPreview(preview: FoldPreview, focus: boolean): void {
    if (!this.shell || !this.doc) return;
    if (this.fold?.preview.previewId === preview.previewId) {
      this.fold.setVerification(preview.verification);
    } else {
      this.fold = new FoldPanel(preview, this.doc.editable, {
        onApply: (id) => void this.applyFold(id),
        onCancel: (id) => {
          this.messenger.sendEvent({ type: 'cancelFold', previewId: id });
          this.closeFold();
          this.shell?.foldButton.focus();
        },
      });
      this.shell.foldHost.replaceChildren(this.fold.element);
    }
    this.setStatus('');
    if (focus) this.fold.focus();
  }

  private async applyFold(previewId: number): Promise<void> {
    const panel = this.fold;
    if (!panel) return;
    panel.setBusy(true);
    panel.showError(null);
    try {
      const reply = await this.request({ type: 'applyFold', previewId });
      if (reply.type === 'error') {
        panel.showError(reply.message);
        return;
      }
      if (this.fold === panel) this.closeFold();
      this.setStatus(appliedText(reply.label), 'applied');
      this.shell?.foldButton.focus();
    } catch (err) {
      panel.showError(err instanceof Error ? err.message : String(err));
    } finally {
      panel.setBusy(false);
    }
  }

  private closeFold(): void {
    this.fold = null;
    this.shell?.foldHost.replaceChildren();
  }

  // ------------------------------------------------------------------------------------------------------------
  // Freeze BatchNorm

  private async requestFreeze(): Promise<void> {
    if (this.requestingFreeze || !this.shell) return;
    this.requestingFreeze = true;
    this.shell.freezeButton.setAttribute('aria-busy', 'true');
    try {
      const reply = await this.request({ type: 'requestFreezePreview' });
      if (reply.type === 'error') this.setStatus(reply.message);
      else this.showFreezePreview(reply.preview, true);
    } catch (err) {
      this.setStatus(err instanceof Error ? err.message : String(err));
    } finally {
      this.requestingFreeze = false;
      this.shell?.freezeButton.removeAttribute('aria-busy');
    }
  }

  private showFreezePreview(preview: FreezePreview, focus: boolean): void {
    if (!this.shell || !this.doc) return;
    if (this.freeze?.preview.previewId !== preview.previewId) {
      this.freeze = new FreezePanel(preview, this.doc.editable, {
        onApply: (id) => void this.applyFreeze(id),
        onCancel: (id) => {
          this.messenger.sendEvent({ type: 'cancelFreeze', previewId: id });
          this.closeFreeze();
          this.shell?.freezeButton.focus();
        },
      });
      this.shell.freezeHost.replaceChildren(this.freeze.element);
    }
    this.setStatus('');
    if (focus) this.freeze.focus();
  }

  private async applyFreeze(previewId: number): Promise<void> {
    const panel = this.freeze;
    if (!panel) return;
    panel.setBusy(true);
    panel.showError(null);
    try {
      const reply = await this.request({ type: 'applyFreeze', previewId });
      if (reply.type === 'error') {
        panel.showError(reply.message);
        return;
      }
      if (this.freeze === panel) this.closeFreeze();
      this.setStatus(appliedText(reply.label), 'applied');
      this.shell?.freezeButton.focus();
    } catch (err) {
      panel.showError(err instanceof Error ? err.message : String(err));
    } finally {
      panel.setBusy(false);
    }
  }

  private closeFreeze(): void {
    this.freeze = null;
    this.shell?.freezeHost.replaceChildren();
  }
  // ------------------------------------------------------------------------------------------------------------
  // Doctor fixes (a finding's fix button): Fold / Freeze BatchNorm use their own previews

  private async onFix(fixId: string, _finding: Finding): Promise<void> {
    if (fixId === 'fold-batchnorm') return this.requestFold();
    if (fixId === 'freeze-batchnorm') return this.requestFreeze();
    if (TOOLBAR_FIXES.has(fixId)) return;
    return this.requestFix(fixId, {});
  }

  private async requestFix(fixId: string, settings: FixSettings): Promise<void> {
    if (this.requestingFix || !this.shell) return;
    this.requestingFix = true;
    this.fix?.setBusy(true);
    try {
      const reply = await this.request({ type: 'requestFixPreview', fixId, settings });
      if (reply.type === 'error') {
        if (this.fix) this.fix.showError(reply.message);
        else this.setStatus(reply.message);
      } else this.showFixPreview(reply.preview, true);
    } catch (err) {
      this.setStatus(err instanceof Error ? err.message : String(err));
    } finally {
      this.requestingFix = false;
      this.fix?.setBusy(false);
    }
  }

  private showFixPreview(preview: FixPreview, focus: boolean): void {
    if (!this.shell || !this.doc) return;
    if (this.fix?.preview.previewId === preview.previewId) {
      this.fix.setVerification(preview);
    } else {
      this.fix = new FixPanel(preview, this.doc.editable, {
        onApply: (id) => void this.applyFix(id),
        onCancel: (id) => {
          this.messenger.sendEvent({ type: 'cancelFix', previewId: id });
          this.closeFix();
        },
        onSettings: (fixId, settings) => void this.requestFix(fixId, settings),
      });
      this.shell.fixHost.replaceChildren(this.fix.element);
    }
    this.setStatus('');
    if (focus) this.fix.focus();
  }

  private async applyFix(previewId: number): Promise<void> {
    const panel = this.fix;
    if (!panel) return;
    panel.setBusy(true);
    panel.showError(null);
    try {
      const reply = await this.request({ type: 'applyFix', previewId });
      if (reply.type === 'error') {
        panel.showError(reply.message);
        return;
      }
      if (this.fix === panel) this.closeFix();
      this.setStatus(appliedText(reply.label), 'applied');
    } catch (err) {
      panel.showError(err instanceof Error ? err.message : String(err));
    } finally {
      panel.setBusy(false);
    }
  }

  private closeFix(): void {
    this.fix = null;
    this.shell?.fixHost.replaceChildren();
  }
}

function appliedText(label: string): string {
  return `Applied ${label}. Use Undo to go back; save to write the file.`;
}
