import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { LayerReport } from '../src/core/types';
import type {
  DocumentChange,
  DocumentView,
  FoldPreview,
  FreezePreview,
  HostToWebview,
  ReplyTo,
  WebviewRequest,
  WebviewToHost,
} from '../src/protocol/messages';
import type { Messenger } from '../src/protocol/messenger';
import { renderDetail } from './detail';
import { DimsControl } from './dims';
import { clear, h, setDisabled } from './dom';
import { FoldPanel } from './fold';
import { FreezePanel } from './freeze';
import { COLUMN_KEYS, LayerTable, type SortState } from './table';
import { renderError, renderFindings, renderSummary } from './views';

/** What survives the webview being hidden/reloaded (VS Code keeps it through getState/setState). */
export interface PersistedState {
  selected: string | null;
  sort: SortState;
}

export function restoreState(raw: unknown): PersistedState {
  const fallback: PersistedState = { selected: null, sort: { key: 'index', dir: 'asc' } };
  if (typeof raw !== 'object' || raw === null) return fallback;
  const r = raw as Partial<Record<keyof PersistedState, unknown>>;
  const selected = typeof r.selected === 'string' ? r.selected : null;
  const s = r.sort as Partial<Record<keyof SortState, unknown>> | undefined;
  const sort =
    s && typeof s.key === 'string' && COLUMN_KEYS.has(s.key) && (s.dir === 'asc' || s.dir === 'desc')
      ? ({ key: s.key, dir: s.dir } as SortState)
      : fallback.sort;
  return { selected, sort };
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
  findings: HTMLElement;
  detail: HTMLElement;
  status: HTMLElement;
  table: LayerTable;
}

export class App {
  private doc: DocumentView | null = null;
  private shell: Shell | null = null;
  private fold: FoldPanel | null = null;
  private requestingFold = false;
  private freeze: FreezePanel | null = null;
  private requestingFreeze = false;
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
        this.revealLayer(msg.layer);
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
      case 'foldApplied':
      case 'freezeApplied':
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
    const findings = h('div');
    this.root.append(
      h('header', { class: 'toolbar' }, title, h('div', { class: 'toolbar-actions' }, foldButton, freezeButton)),
      summary,
      dims.element,
      foldHost,
      freezeHost,
      findings,
      status,
      h('div', { class: 'split' }, h('div', { class: 'table-wrap' }, table.element), detail),
    );
    return { title, foldButton, freezeButton, summary, dims, foldHost, freezeHost, findings, detail, status, table };
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
    s.findings.replaceChildren(renderFindings(report.findings, (name) => this.revealLayer(name)));
    s.table.setLayers(report.layers);
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
    this.statusKind = null;
    this.root.replaceChildren(renderError(fileName, message));
  }

  private onSelect(layer: LayerReport | null): void {
    this.renderDetailFor(layer);
    this.updateSelection(layer?.name ?? null);
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
  }

  private revealLayer(name: string): void {
    if (!this.shell) return;
    if (this.shell.table.select(name, { scroll: true, focus: true })) {
      this.setStatus('');
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
}

function appliedText(label: string): string {
  return `Applied ${label}. Use Undo to go back; save to write the file.`;
}
