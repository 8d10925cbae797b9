import * as vscode from 'vscode';
import { ModelError } from '../core/api';
import { formatShape } from '../protocol/format';
import { layerStatsLine } from '../protocol/layers';
import { fixTitle } from '../protocol/fixes';
import type { EditorSession, FixCommandResult, FoldCommandResult, FreezeCommandResult } from './editorSession';
import { reportError } from './errors';
import type { ModelExplorer } from './explorer';
import { REVEAL_FINDING_COMMAND, type ModelEditorProvider } from './modelEditorProvider';
import { findModelFiles, isModelUri, MODEL_EXTENSIONS, viewTypeFor } from './modelFiles';

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}

/** A Uri from a command argument: a Uri (explorer/editor menus), a tree node with `uri`, or a string. */
function uriFromArg(arg: unknown): vscode.Uri | undefined {
  if (arg instanceof vscode.Uri) return arg;
  if (typeof arg === 'string' && arg.length > 0) return arg.includes(':') ? vscode.Uri.parse(arg) : vscode.Uri.file(arg);
  if (typeof arg === 'object' && arg !== null && 'uri' in arg && arg.uri instanceof vscode.Uri) return arg.uri;
  return undefined;
}

/** The model file of the active tab (text, binary or custom editor), if it is one. */
function activeTabModelUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  const uri =
    input instanceof vscode.TabInputText || input instanceof vscode.TabInputCustom ? input.uri : undefined;
  return uri && isModelUri(uri) ? uri : undefined;
}

/** Let the user pick a model file of the workspace (or any file when the workspace has none). */
async function pickModelFile(title: string): Promise<vscode.Uri | undefined> {
  const uris = await findModelFiles(2000);
  if (uris.length === 0) {
    const picked = await vscode.window.showOpenDialog({
      title,
      canSelectMany: false,
      filters: { 'Models (ONNX, Keras, TF.js model.json)': MODEL_EXTENSIONS },
    });
    return picked?.[0];
  }
  const items = uris
    .map((uri) => ({ label: vscode.workspace.asRelativePath(uri, true), uri }))
    .sort((a, b) => a.label.localeCompare(b.label));
  const picked = await vscode.window.showQuickPick(items, { title, placeHolder: 'Pick a model file' });
  return picked?.uri;
}

export function registerCommands(
  context: vscode.ExtensionContext,
  editors: ModelEditorProvider,
  explorer: ModelExplorer,
  log: vscode.LogOutputChannel,
): void {
  /** A command whose failures are logged and shown as one clear message; it then returns undefined. */
  const register = <T>(id: string, title: string, run: (...args: unknown[]) => Promise<T> | T): void => {
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: unknown[]): Promise<T | undefined> => {
        try {
          return await run(...args);
        } catch (err) {
          reportError(log, title, err);
          return undefined;
        }
      }),
    );
  };

  /** The editor a command acts on: the right-clicked/passed file, the active editor, or a picked file. */
  const targetSession = async (arg: unknown, title: string): Promise<EditorSession | undefined> => {
    const uri = uriFromArg(arg);
    if (uri) return editors.showEditor(uri);
    const active = editors.activeSession();
    if (active) return active;
    const target = activeTabModelUri() ?? (await pickModelFile(title));
    return target ? editors.showEditor(target) : undefined;
  };

  register('modelSurgeon.openInModelSurgeon', 'Open in Model Surgeon', async (arg) => {
    const uri = uriFromArg(arg) ?? activeTabModelUri() ?? (await pickModelFile('Open in Model Surgeon'));
    if (!uri) return;
    await vscode.commands.executeCommand('vscode.openWith', uri, viewTypeFor(uri));
  });

  /** `(target?, { preview? })` or, from a key binding's "args", just `{ preview }`: the target and whether to preview */
  const previewArgs = (arg: unknown, options: unknown): { target: unknown; preview: boolean } => {
    const optionsOnly = options === undefined && isRecord(arg) && !(arg instanceof vscode.Uri) && 'preview' in arg && !('uri' in arg);
    const opts = optionsOnly ? arg : options;
    return { target: optionsOnly ? undefined : arg, preview: !(isRecord(opts) && opts.preview === false) };
  };

  /**
   * modelSurgeon.foldBatchNorm(target?, { preview? }): by default opens the verified preview in the editor.
   * With `preview: false` (key bindings, scripts) it folds, verifies and applies the result as an undoable edit
   * when it is within tolerance, and returns { folded, skipped, max_abs_error, max_rel_error }; on any failure
   * it shows one error, changes nothing and returns undefined.
   */
  register('modelSurgeon.foldBatchNorm', 'Fold BatchNorm', async (arg, options): Promise<FoldCommandResult | undefined> => {
    const { target, preview } = previewArgs(arg, options);
    const session = await targetSession(target, 'Fold BatchNorm');
    if (!session) return undefined;
    if (!preview) return session.foldAndApply();
    session.post({ type: 'foldPreview', preview: await session.startFoldPreview() });
    return undefined;
  });

  /**
   * modelSurgeon.freezeBatchNorm(target?, { preview? }) for Keras-family models (.h5, .keras, TF.js layers):
   * by default shows what would be frozen in the editor; with `preview: false` it sets every BatchNorm to
   * `trainable: false` as an undoable edit and returns { frozen, layers }. Other formats: one error, undefined.
   */
  register('modelSurgeon.freezeBatchNorm', 'Freeze BatchNorm', async (arg, options): Promise<FreezeCommandResult | undefined> => {
    const { target, preview } = previewArgs(arg, options);
    const session = await targetSession(target, 'Freeze BatchNorm');
    if (!session) return undefined;
    if (!preview) return session.freezeAndApply();
    session.post({ type: 'freezePreview', preview: await session.startFreezePreview() });
    return undefined;
  });

  /**
   * modelSurgeon.applyFix(target?, fixId?, { preview?, rate?, groups? }): a finding's fix (Finding.fix) — the
   * doctor's rewrites (remove-dropout, fold-batchnorm-forward, batchnorm-to-affine, batchnorm-eval-mode,
   * replace-batchnorm-groupnorm, set-dropout-rate) and fold-batchnorm / freeze-batchnorm. Without a fix id it
   * offers the fixes of the model's findings. By default it opens the preview in the editor; with
   * `preview: false` (scripts, tests) it rewrites, verifies and applies one undoable edit and returns
   * { fix, applied, label, max_abs_error, max_rel_error, preserves_outputs, unverifiable, notes }. Fixes that
   * keep the outputs are applied only within tolerance; on any failure: one error message, undefined.
   */
  register('modelSurgeon.applyFix', 'Apply Fix', async (arg, fixArg, options): Promise<FixCommandResult | undefined> => {
    const session = await targetSession(arg, 'Apply Fix');
    if (!session) return undefined;
    const fixId = typeof fixArg === 'string' && fixArg ? fixArg : await pickFix(session);
    if (!fixId) return undefined;
    const preview = !(isRecord(options) && options.preview === false);
    if (fixId === 'fold-batchnorm') {
      if (preview) {
        session.post({ type: 'foldPreview', preview: await session.startFoldPreview() });
        return undefined;
      }
      const r = await session.foldAndApply();
      return {
        fix: fixId,
        applied: r.folded,
        label: r.folded ? `Fold BatchNorm (${r.folded})` : null,
        max_abs_error: r.folded ? r.max_abs_error : null,
        max_rel_error: r.folded ? r.max_rel_error : null,
        preserves_outputs: true,
        unverifiable: null,
        ...(r.engine ? { engine: r.engine } : {}),
        notes: r.notes,
      };
    }
    if (fixId === 'freeze-batchnorm') {
      if (preview) {
        session.post({ type: 'freezePreview', preview: await session.startFreezePreview() });
        return undefined;
      }
      const r = await session.freezeAndApply();
      return {
        fix: fixId,
        applied: r.frozen,
        label: r.frozen ? `Freeze BatchNorm (${r.frozen})` : null,
        max_abs_error: null,
        max_rel_error: null,
        preserves_outputs: true,
        unverifiable: null,
        notes: [],
      };
    }
    if (!preview) return session.fixAndApply(fixId, options);
    session.post({ type: 'fixPreview', preview: await session.startFixPreview(fixId, options) });
    return undefined;
  });

  /** The fixes the model's findings point at, to pick one (command palette use of Apply Fix). */
  const pickFix = async (session: EditorSession): Promise<string | undefined> => {
    const view = await session.document.view();
    if (!view) throw new ModelError(session.document.loadError ?? `${session.document.fileName} is not open.`);
    const items = view.report.findings
      .filter((f) => f.fix && view.fixes.includes(f.fix))
      .map((f) => ({ label: fixTitle(f.fix ?? ''), description: f.code, detail: f.message, fix: f.fix ?? '' }));
    if (items.length === 0) {
      void vscode.window.showInformationMessage(`No finding in ${session.document.fileName} has a fix this editor can apply.`);
      return undefined;
    }
    const picked = await vscode.window.showQuickPick(items, { title: `Apply Fix — ${session.document.fileName}`, placeHolder: 'Pick a finding to fix (opens the verified preview)', matchOnDetail: true });
    return picked?.fix;
  };

  /** The target of a Problems-panel code link: command:modelSurgeon.revealFinding?[key] */
  register(REVEAL_FINDING_COMMAND, 'Show Finding', async (key) => {
    if (typeof key !== 'number') {
      log.warn(`${REVEAL_FINDING_COMMAND} needs the key of a Problems-panel link`);
      return;
    }
    await editors.revealFinding(key);
  });

  register('modelSurgeon.showLayerStatistics', 'Show Layer Statistics', async (arg) => {
    const uri = uriFromArg(arg);
    const session = uri
      ? await editors.showEditor(uri)
      : (editors.activeOrLastSession() ?? (await targetSession(undefined, 'Show Layer Statistics')));
    if (!session) return;
    const view = await session.document.view();
    if (!view) throw new ModelError(session.document.loadError ?? `${session.document.fileName} is not open.`);

    type LayerItem = vscode.QuickPickItem & { layer: string };
    const items: LayerItem[] = view.report.layers.map((layer) => ({
      label: layer.name,
      description: `${layer.op}${layer.output_shape ? ` · ${formatShape(layer.output_shape)}` : ''}`,
      detail: layerStatsLine(layer),
      layer: layer.name,
    }));
    const qp = vscode.window.createQuickPick<LayerItem>();
    qp.title = `Layer statistics — ${session.document.fileName}`;
    qp.placeholder = 'Filter layers by name, op or statistics';
    qp.matchOnDescription = true;
    qp.matchOnDetail = true;
    qp.items = items;
    const selected = items.find((i) => i.layer === session.selectedLayer);
    if (selected) qp.activeItems = [selected];
    const picked = await new Promise<LayerItem | undefined>((resolve) => {
      qp.onDidAccept(() => {
        resolve(qp.selectedItems[0] ?? qp.activeItems[0]);
        qp.hide();
      });
      qp.onDidHide(() => resolve(undefined));
      qp.show();
    });
    qp.dispose();
    if (!picked) return;
    session.panel.reveal(session.panel.viewColumn, false);
    session.revealLayer(picked.layer);
  });

  register('modelSurgeon.refreshExplorer', 'Refresh Model Explorer', () => explorer.refresh(true));

  register('modelSurgeon.revealLayer', 'Reveal Layer', async (uriArg, layerArg) => {
    const uri = uriFromArg(uriArg);
    if (!uri || typeof layerArg !== 'string') {
      log.warn('modelSurgeon.revealLayer needs (uri, layerName)');
      return;
    }
    await editors.revealLayer(uri, layerArg);
  });
}
