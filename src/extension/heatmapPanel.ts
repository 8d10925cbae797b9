/**
 * Probe Activations (dead neurons), issue #5 "Views": a webview panel of its own (dist/heatmap.js) next to the
 * Model Surgeon editor. It probes the model of the editor's document (ONNX, Keras, TF.js layers) under a cancellable progress,
 * shows an APoZ heatmap (layers x channels), the dead fraction per layer and the activation mean/variance by
 * depth, and previews + applies "Prune dead units" and "Swap activation" as undoable edits of that document.
 */
import * as vscode from 'vscode';
import * as core from '../core/api';
import type { Model } from '../core/api';
import type { ProbeReport } from '../core/types';
import {
  isHeatmapWebviewMessage,
  sanitizeProbeSettings,
  sourceLabel,
  SWAP_TARGETS,
  type HeatmapHostMessage,
  type HeatmapWebviewMessage,
  type ProbeSettings,
  type ProbeSummary,
  type PrunePreview,
  type SwapPreview,
  type SwapTarget,
} from '../protocol/heatmap';
import { CancelledError, logError, reportError, userMessage } from './errors';
import { baseName, loadModelFromUri } from './loading';
import type { ModelDocument } from './modelDocument';
import type { ModelEditorProvider } from './modelEditorProvider';
import { isModelUri } from './modelFiles';
import { runWithProgress } from './progress';
import { localResourceRoots, webviewHtml } from './webviewHtml';

export const PROBE_COMMAND = 'modelSurgeon.probeActivations';
const SETTINGS_KEY = 'modelSurgeon.probeSettings';

/** What `executeCommand('modelSurgeon.probeActivations', uri, { show: false })` returns. */
export interface ProbeCommandResult {
  file: string;
  samples: number;
  layers: number;
  channels: number;
  /** dead + constant channels (what Prune dead units removes, before coupling) */
  dead_units: number;
  per_layer: { name: string; op: string; channels: number; dead: number; constant: number }[];
  source: string;
  engine: string;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}

function uriFromArg(arg: unknown): vscode.Uri | undefined {
  if (arg instanceof vscode.Uri) return arg;
  if (typeof arg === 'string' && arg.length > 0) return arg.includes(':') ? vscode.Uri.parse(arg) : vscode.Uri.file(arg);
  if (isRecord(arg) && arg.uri instanceof vscode.Uri) return arg.uri;
  return undefined;
}

function activeModelUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  const uri = input instanceof vscode.TabInputCustom || input instanceof vscode.TabInputText ? input.uri : undefined;
  return uri && isModelUri(uri) ? uri : undefined;
}

function settingsStore(state: vscode.Memento): { get(uri: vscode.Uri): ProbeSettings; set(uri: vscode.Uri, s: ProbeSettings): Thenable<void> } {
  const all = (): Record<string, unknown> => {
    const v = state.get<unknown>(SETTINGS_KEY);
    return isRecord(v) ? v : {};
  };
  return {
    get: (uri) => sanitizeProbeSettings(all()[uri.toString()]),
    set: (uri, s) => state.update(SETTINGS_KEY, { ...all(), [uri.toString()]: s }),
  };
}

function inputSource(s: ProbeSettings): core.InputSource {
  return s.source.kind === 'random' ? { kind: 'random', seed: s.source.seed } : core.inputSourceFromPath(s.source.path);
}

/** the core probes ONNX, TF.js layers and Keras models; TF.js graph models are refused there with a clear message */
function requireProbeable(model: Model, name: string): void {
  if (model.format === 'tfjs-graph') {
    throw new core.ModelError(`Probe Activations supports ONNX, Keras and TF.js layers models; ${name} is a TF.js graph model.`);
  }
}

async function runProbe(model: Model, settings: ProbeSettings, name: string, signal?: AbortSignal): Promise<ProbeReport> {
  return runWithProgress({ title: `Probing activations of ${name}…`, location: 'notification', cancellable: true, notifyAfterMs: 1000, signal }, (sig, progress) =>
    core.probe(model, inputSource(settings), {
      samples: settings.samples,
      batchSize: settings.batchSize,
      signal: sig,
      onProgress: (done, total) => progress.report({ message: `${done}/${total} samples` }),
    }),
  );
}

function summarize(report: ProbeReport, fileName: string): ProbeSummary {
  return {
    fileName,
    layers: report.layers.map((l) => ({
      name: l.name,
      op: l.op,
      shape: l.shape,
      channels: l.channels,
      dead: l.dead,
      constant: l.constant,
      apoz: l.apoz,
      mean: l.mean,
      max: l.max,
      layer_mean: l.layer_mean,
      layer_var: l.layer_var,
    })),
    samples: report.samples,
    batchSize: report.batch_size,
    source: report.source,
    engine: report.engine,
    seconds: report.seconds,
    deadUnits: report.layers.reduce((n, l) => n + l.dead.length + l.constant.length, 0),
    notes: report.notes,
  };
}


type Pending =
  | { kind: 'prune'; base: Model; model: Model; removed: number }
  | { kind: 'swap'; base: Model; model: Model; to: SwapTarget; swapped: number };

/** One panel per model file. */
class HeatmapPanel {
  private ready = false;
  private readonly queue: HeatmapHostMessage[] = [];
  private report: ProbeReport | null = null;
  /** the model the current probe ran on */
  private probed: Model | null = null;
  private pending: Pending | null = null;
  private busy: AbortController | null = null;
  private readonly subs: vscode.Disposable[] = [];

  constructor(
    readonly panel: vscode.WebviewPanel,
    readonly document: ModelDocument,
    private readonly editors: ModelEditorProvider,
    private readonly store: ReturnType<typeof settingsStore>,
    private readonly log: vscode.LogOutputChannel,
    private readonly onDispose: () => void,
  ) {
    this.subs.push(
      panel.webview.onDidReceiveMessage((m: unknown) => {
        if (isHeatmapWebviewMessage(m)) void this.onMessage(m);
      }),
      panel.onDidDispose(() => this.dispose()),
      document.onDidChange((change) => {
        if (this.probed && document.model !== this.probed) {
          this.pending = null;
          this.post({ type: 'stale', reason: `The model changed (${change.label ?? change.reason}). Run the probe again.` });
        }
      }),
      document.onDidDispose(() => panel.dispose()),
    );
  }

  get settings(): ProbeSettings {
    return this.store.get(this.document.uri);
  }

  post(message: HeatmapHostMessage): void {
    if (!this.ready) {
      this.queue.push(message);
      return;
    }
    void this.panel.webview.postMessage(message);
  }

  private settingsMessage(type: 'init' | 'settings'): HeatmapHostMessage {
    const settings = this.settings;
    return type === 'init'
      ? { type, fileName: this.document.fileName, settings, sourceLabel: sourceLabel(settings.source) }
      : { type, settings, sourceLabel: sourceLabel(settings.source) };
  }

  private async onMessage(m: HeatmapWebviewMessage): Promise<void> {
    switch (m.type) {
      case 'ready': {
        this.ready = true;
        void this.panel.webview.postMessage(this.settingsMessage('init'));
        for (const q of this.queue.splice(0)) void this.panel.webview.postMessage(q);
        return;
      }
      case 'run':
        await this.store.set(this.document.uri, { ...this.settings, samples: m.samples, batchSize: m.batchSize });
        this.post(this.settingsMessage('settings'));
        await this.probe();
        return;
      case 'chooseSource':
        await this.chooseSource(m.kind);
        this.post(this.settingsMessage('settings')); // also when the dialog was cancelled: the picker shows the stored source
        return;
      case 'prunePreview':
        await this.guard('Prune dead units', () => this.prunePreview());
        return;
      case 'swapPreview':
        await this.guard('Swap activation', () => this.swapPreview());
        return;
      case 'pruneApply':
      case 'swapApply':
        await this.guard('Apply', async () => this.apply(m.type === 'pruneApply' ? 'prune' : 'swap'));
        // show the new model (its heatmap, the units left) right away
        if (this.probed !== this.document.model) await this.probe();
        return;
      case 'closePreview':
        this.pending = null;
        return;
      case 'reveal':
        await vscode.commands.executeCommand('modelSurgeon.revealLayer', this.document.uri, m.layer);
        return;
    }
  }

  /** Runs `work` as the panel's one job; errors become one line in the panel (and the log). */
  private async guard(what: string, work: (signal: AbortSignal) => Promise<void>): Promise<void> {
    this.busy?.abort();
    const controller = new AbortController();
    this.busy = controller;
    this.post({ type: 'busy', what });
    try {
      await work(controller.signal);
    } catch (err) {
      if (!(err instanceof CancelledError)) logError(this.log, what, err);
      this.post({ type: 'error', message: err instanceof CancelledError ? `${what}: cancelled.` : userMessage(err, what) });
    } finally {
      if (this.busy === controller) {
        this.busy = null;
        this.post({ type: 'busy', what: null });
      }
    }
  }

  private currentModel(): Model {
    const model = this.document.model;
    if (!model) throw new core.ModelError(this.document.loadError ?? `${this.document.fileName} is not open.`);
    requireProbeable(model, this.document.fileName);
    return model;
  }

  async probe(): Promise<void> {
    await this.guard('Probe', async (signal) => {
      await this.document.whenIdle();
      const model = this.currentModel();
      const report = await runProbe(model, this.settings, this.document.fileName, signal);
      this.report = report;
      this.probed = model;
      this.pending = null;
      this.log.info(`Probed ${this.document.fileName}: ${report.layers.length} activation layers, ${report.samples} samples in ${report.seconds.toFixed(2)} s`);
      this.post({ type: 'probe', probe: summarize(report, this.document.fileName) });
    });
  }

  private async chooseSource(kind: 'random' | 'path'): Promise<void> {
    const current = this.settings;
    if (kind === 'random') {
      await this.store.set(this.document.uri, { ...current, source: { kind: 'random', seed: current.source.kind === 'random' ? current.source.seed : 1 } });
    } else {
      const picked = await vscode.window.showOpenDialog({
        title: 'Probe inputs: a folder of images, or an .npy / .npz file',
        canSelectFiles: true,
        canSelectFolders: true,
        canSelectMany: false,
        defaultUri: vscode.Uri.joinPath(this.document.uri, '..'),
        filters: { 'Arrays (.npy, .npz)': ['npy', 'npz'], 'All files': ['*'] },
      });
      const uri = picked?.[0];
      if (!uri) return;
      if (uri.scheme !== 'file') {
        this.post({ type: 'error', message: 'Probe inputs must be on the local file system.' });
        return;
      }
      try {
        core.inputSourceFromPath(uri.fsPath); // one clear message now rather than at probe time
      } catch (err) {
        this.post({ type: 'error', message: userMessage(err, 'Probe inputs') });
        return;
      }
      await this.store.set(this.document.uri, { ...current, source: { kind: 'path', path: uri.fsPath } });
    }
  }

  private probeFor(model: Model): ProbeReport {
    if (!this.report || this.probed !== model) throw new core.ModelError('The model changed since the probe. Run the probe again.');
    return this.report;
  }

  private async prunePreview(): Promise<void> {
    const model = this.currentModel();
    const report = this.probeFor(model);
    const s = this.settings;
    const r = await runWithProgress({ title: `Pruning dead units of ${this.document.fileName}…`, location: 'notification', cancellable: true, notifyAfterMs: 1000 }, (signal) =>
      core.prune(model, { criterion: 'dead', inputs: inputSource(s), probe: report, samples: s.samples, batchSize: s.batchSize, signal }),
    );
    const removedPerLayer = Object.entries(r.removed).map(([layer, removed]) => ({ layer, removed }));
    const removed = removedPerLayer.reduce((n, x) => n + x.removed, 0);
    this.pending = removed > 0 ? { kind: 'prune', base: model, model: r.model, removed } : null;
    const preview: PrunePreview = {
      removed,
      removedPerLayer,
      params: [r.params_before, r.params_after],
      macs: [r.macs_before, r.macs_after],
      bytes: [r.bytes_before, r.bytes_after],
      maxAbsError: r.verify.max_abs_error,
      maxRelError: r.verify.max_rel_error,
      exact: r.plan.exact,
      notes: r.plan.notes,
      skipped: r.plan.skipped.map((x) => ({ layer: x.layer, reason: x.reason })),
    };
    this.post({ type: 'prunePreview', preview });
  }

  private async swapPreview(): Promise<void> {
    const model = this.currentModel();
    const items = SWAP_TARGETS.map((to) => ({ label: to, to, description: to === 'selu' ? 'folds BatchNorm first (the SELU recipe)' : '' }));
    const picked = await vscode.window.showQuickPick(items, { title: `Swap ReLU-family activations of ${this.document.fileName} to…`, placeHolder: 'Target activation' });
    if (!picked) return;
    const s = this.settings;
    const r = await runWithProgress({ title: `Swapping activations to ${picked.to}…`, location: 'notification', cancellable: true, notifyAfterMs: 1000 }, (signal) =>
      core.swapActivations(model, { to: picked.to }, inputSource(s), { samples: s.samples, batchSize: s.batchSize, signal }),
    );
    this.pending = r.swapped > 0 ? { kind: 'swap', base: model, model: r.model, to: picked.to, swapped: r.swapped } : null;
    const preview: SwapPreview = {
      to: picked.to,
      swapped: r.swapped,
      removedBn: r.removed_bn,
      replacedDropout: r.replaced_dropout,
      maxAbsError: r.measurement.deviation.max_abs_error,
      maxRelError: r.measurement.deviation.max_rel_error,
      profile: r.measurement.profile.map((p) => ({
        layer: p.layer,
        opBefore: p.op_before,
        opAfter: p.op_after,
        meanBefore: p.mean_before,
        varBefore: p.var_before,
        meanAfter: p.mean_after,
        varAfter: p.var_after,
      })),
      notes: r.notes,
      skipped: r.skipped.map((x) => ({ layer: x.layer, reason: x.reason })),
    };
    this.post({ type: 'swapPreview', preview });
  }

  private async apply(kind: Pending['kind']): Promise<void> {
    const p = this.pending;
    if (!p || p.kind !== kind) throw new core.ModelError('Nothing to apply: open the preview first.');
    if (this.document.model !== p.base) throw new core.ModelError('The model changed since the preview. Preview again.');
    const label = p.kind === 'prune' ? `Prune dead units (${p.removed})` : `Swap activations to ${p.to} (${p.swapped})`;
    this.pending = null;
    this.editors.applyModelEdit(this.document, label, p.model);
    this.log.info(`${this.document.fileName}: applied ${label}`);
    this.post({ type: 'applied', label });
  }

  dispose(): void {
    this.busy?.abort();
    for (const s of this.subs.splice(0)) s.dispose();
    this.onDispose();
  }
}

/** Registers modelSurgeon.probeActivations and its panels. */
export function registerHeatmap(context: vscode.ExtensionContext, editors: ModelEditorProvider, log: vscode.LogOutputChannel): void {
  const store = settingsStore(context.workspaceState);
  const panels = new Map<string, HeatmapPanel>();

  /**
   * modelSurgeon.probeActivations(target?, { show?, samples?, batchSize? }): opens the panel for the model
   * (its Model Surgeon editor opens too: edits apply to that document). With `show: false` (scripts, tests)
   * it only probes and returns a ProbeCommandResult summary; on any failure one message and undefined.
   */
  const command = async (arg: unknown, options: unknown): Promise<ProbeCommandResult | undefined> => {
    const optionsOnly = options === undefined && isRecord(arg) && !(arg instanceof vscode.Uri) && !('uri' in arg);
    const opts = isRecord(optionsOnly ? arg : options) ? ((optionsOnly ? arg : options) as Record<string, unknown>) : {};
    const target = optionsOnly ? undefined : arg;
    const uri = uriFromArg(target) ?? activeModelUri() ?? editors.activeOrLastSession()?.document.uri;
    if (!uri) throw new core.ModelError('Open a model in Model Surgeon (or right-click a model file) to probe its activations.');
    const name = baseName(uri);
    const base = store.get(uri);
    const settings: ProbeSettings = sanitizeProbeSettings({
      ...base,
      ...(typeof opts.samples === 'number' ? { samples: opts.samples } : {}),
      ...(typeof opts.batchSize === 'number' ? { batchSize: opts.batchSize } : {}),
    });

    if (opts.show === false) {
      const open = editors.documentFor(uri);
      if (open) await open.whenIdle();
      const model = open?.model ?? (await loadModelFromUri(uri));
      requireProbeable(model, name);
      const report = await runProbe(model, settings, name);
      return {
        file: name,
        samples: report.samples,
        layers: report.layers.length,
        channels: report.layers.reduce((n, l) => n + l.channels, 0),
        dead_units: report.layers.reduce((n, l) => n + l.dead.length + l.constant.length, 0),
        per_layer: report.layers.map((l) => ({ name: l.name, op: l.op, channels: l.channels, dead: l.dead.length, constant: l.constant.length })),
        source: report.source,
        engine: report.engine,
      };
    }

    if (settings.samples !== base.samples || settings.batchSize !== base.batchSize) await store.set(uri, settings);
    const existing = panels.get(uri.toString());
    if (existing) {
      existing.panel.reveal(undefined, false);
      await existing.probe();
      return undefined;
    }
    const session = await editors.showEditor(uri);
    const document = session.document;
    await document.whenIdle();
    const model = document.model;
    if (!model) throw new core.ModelError(document.loadError ?? `${name} could not be opened.`);
    requireProbeable(model, name);

    const panel = vscode.window.createWebviewPanel('modelSurgeon.heatmap', `Activations: ${name}`, { viewColumn: vscode.ViewColumn.Beside, preserveFocus: false }, {
      enableScripts: true,
      retainContextWhenHidden: true,
      localResourceRoots: localResourceRoots(context.extensionUri),
    });
    panel.webview.html = webviewHtml(panel.webview, context.extensionUri, `Activations: ${name}`, { script: 'heatmap.js', loading: 'Probing activations…' });
    const key = uri.toString();
    const hp = new HeatmapPanel(panel, document, editors, store, log, () => panels.delete(key));
    panels.set(key, hp);
    await hp.probe();
    return undefined;
  };

  context.subscriptions.push(
    vscode.commands.registerCommand(PROBE_COMMAND, async (arg: unknown, options: unknown) => {
      try {
        return await command(arg, options);
      } catch (err) {
        reportError(log, 'Probe Activations', err);
        return undefined;
      }
    }),
    { dispose: () => [...panels.values()].forEach((p) => p.panel.dispose()) },
  );
}
