import * as path from 'node:path';
import * as vscode from 'vscode';
import type { InspectReport, LayerReport, TensorSummary } from '../core/types';
import { formatBytes, formatCompact, formatInt, formatNum, formatPct, formatShape } from '../protocol/format';
import { logError, userMessage } from './errors';
import type { InputDimsStore } from './inputDims';
import { baseName } from './loading';
import type { ModelEditorProvider } from './modelEditorProvider';
import { findModelFiles, MODEL_FILE_GLOB, MODEL_JSON_GLOB } from './modelFiles';
import { ReportCache } from './reportCache';

type ExplorerNode =
  | { kind: 'file'; uri: vscode.Uri }
  | { kind: 'layer'; uri: vscode.Uri; layer: LayerReport }
  | { kind: 'tensor'; uri: vscode.Uri; layer: LayerReport; tensor: TensorSummary }
  | { kind: 'message'; uri: vscode.Uri; text: string; tooltip?: string };

/**
 * "Model Explorer": model files of the workspace (.onnx, .h5, .keras, and model.json files that are TF.js
 * models) -> layers -> weight tensors. A file is inspected only when it is expanded; reports are cached by
 * uri + mtime, and an open editor's in-memory model wins over the disk.
 */
export class ModelExplorer implements vscode.TreeDataProvider<ExplorerNode>, vscode.Disposable {
  private readonly cache: ReportCache;
  private readonly fileNodes = new Map<string, ExplorerNode & { kind: 'file' }>();
  private readonly disposables: vscode.Disposable[] = [];
  private readonly _onDidChangeTreeData = new vscode.EventEmitter<ExplorerNode | undefined>();
  readonly onDidChangeTreeData = this._onDidChangeTreeData.event;

  constructor(
    private readonly editors: ModelEditorProvider,
    private readonly log: vscode.LogOutputChannel,
    dims: InputDimsStore,
  ) {
    this.cache = new ReportCache(dims);
    this.disposables.push(this._onDidChangeTreeData);
    for (const glob of [MODEL_FILE_GLOB, MODEL_JSON_GLOB]) {
      const watcher = vscode.workspace.createFileSystemWatcher(glob);
      this.disposables.push(
        watcher,
        watcher.onDidCreate(() => this.refresh()),
        watcher.onDidDelete((uri) => {
          this.cache.invalidate(uri);
          this.refresh();
        }),
        // a model.json may turn into (or stop being) a TF.js model: list the files again
        watcher.onDidChange((uri) => (glob === MODEL_JSON_GLOB && !this.fileNodes.has(uri.toString()) ? this.refresh() : this.refreshFile(uri))),
      );
    }
    this.disposables.push(
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.refresh()),
      editors.onDidChangeDocumentModel((doc) => this.refreshFile(doc.uri, false)),
      // new input dims change the shapes and MACs of a file that is not open (open ones report through the editor)
      dims.onDidChange((uri) => this.refreshFile(uri, false)),
    );
  }

  /** Drop all cached reports and re-list the files. */
  refresh(clearCache = false): void {
    if (clearCache) this.cache.invalidate();
    this._onDidChangeTreeData.fire(undefined);
  }

  private refreshFile(uri: vscode.Uri, fileChanged = true): void {
    if (fileChanged) this.cache.invalidate(uri);
    const node = this.fileNodes.get(uri.toString());
    if (node) this._onDidChangeTreeData.fire(node);
  }

  async getChildren(node?: ExplorerNode): Promise<ExplorerNode[]> {
    if (!node) return this.listFiles();
    switch (node.kind) {
      case 'file':
        return this.layersOf(node.uri);
      case 'layer':
        return node.layer.weights.map((tensor) => ({ kind: 'tensor', uri: node.uri, layer: node.layer, tensor }));
      default:
        return [];
    }
  }

  private async listFiles(): Promise<ExplorerNode[]> {
    const uris = await findModelFiles();
    this.fileNodes.clear();
    return uris.map((uri) => {
      const node = { kind: 'file' as const, uri };
      this.fileNodes.set(uri.toString(), node);
      return node;
    });
  }

  private async reportOf(uri: vscode.Uri): Promise<InspectReport> {
    const doc = this.editors.documentFor(uri);
    const view = doc?.model ? await doc.view() : undefined;
    return view ? view.report : this.cache.get(uri);
  }

  private async layersOf(uri: vscode.Uri): Promise<ExplorerNode[]> {
    try {
      const report = await this.reportOf(uri);
      if (report.layers.length === 0) return [{ kind: 'message', uri, text: 'No layers' }];
      return report.layers.map((layer) => ({ kind: 'layer', uri, layer }));
    } catch (err) {
      logError(this.log, `Inspecting ${baseName(uri)}`, err);
      const text = userMessage(err, `Cannot open ${baseName(uri)}`);
      return [{ kind: 'message', uri, text, tooltip: text }];
    }
  }

  getTreeItem(node: ExplorerNode): vscode.TreeItem {
    switch (node.kind) {
      case 'file': {
        const item = new vscode.TreeItem(node.uri, vscode.TreeItemCollapsibleState.Collapsed);
        item.id = node.uri.toString();
        item.label = baseName(node.uri);
        item.description = folderDescription(node.uri);
        item.tooltip = vscode.workspace.asRelativePath(node.uri, true);
        // Keras-family files (.h5, .keras, TF.js model.json) also offer Freeze BatchNorm
        item.contextValue = /\.(h5|keras|json)$/i.test(node.uri.path) ? 'modelFile.keras' : 'modelFile';
        return item;
      }
      case 'layer': {
        const { layer } = node;
        const item = new vscode.TreeItem(
          `${layer.op} ${layer.name}`,
          layer.weights.length ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None,
        );
        item.id = `${node.uri.toString()}#${layer.index}:${layer.name}`;
        item.description = layer.output_shape ? formatShape(layer.output_shape) : '';
        item.tooltip = layerTooltip(layer);
        item.iconPath = new vscode.ThemeIcon(layer.batchnorm ? 'pulse' : 'layers');
        item.contextValue = 'modelLayer';
        item.command = {
          command: 'modelSurgeon.revealLayer',
          title: 'Reveal Layer',
          arguments: [node.uri, layer.name],
        };
        return item;
      }
      case 'tensor': {
        const { tensor } = node;
        const item = new vscode.TreeItem(tensor.name, vscode.TreeItemCollapsibleState.None);
        item.id = `${node.uri.toString()}#${node.layer.index}:${node.layer.name}#${tensor.name}`;
        item.description = `${formatShape(tensor.shape)} ${tensor.dtype}`;
        item.tooltip = tensorTooltip(tensor);
        item.iconPath = new vscode.ThemeIcon('symbol-array');
        item.contextValue = 'modelTensor';
        return item;
      }
      case 'message': {
        const item = new vscode.TreeItem(node.text, vscode.TreeItemCollapsibleState.None);
        item.id = `${node.uri.toString()}#message`;
        if (node.tooltip) item.tooltip = node.tooltip;
        item.iconPath = new vscode.ThemeIcon(node.tooltip ? 'error' : 'info');
        return item;
      }
    }
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** The file's folder relative to its workspace folder ('' at the root; the root's name in multi-root workspaces). */
function folderDescription(uri: vscode.Uri): string {
  const folder = vscode.workspace.getWorkspaceFolder(uri);
  if (!folder) return vscode.Uri.joinPath(uri, '..').fsPath;
  const rel = path.posix.relative(folder.uri.path, path.posix.dirname(uri.path));
  const multi = (vscode.workspace.workspaceFolders?.length ?? 0) > 1;
  return multi ? (rel ? `${folder.name} • ${rel}` : folder.name) : rel;
}

function md(): vscode.MarkdownString {
  const m = new vscode.MarkdownString();
  m.supportHtml = false;
  return m;
}

function layerTooltip(layer: LayerReport): vscode.MarkdownString {
  const m = md();
  m.appendMarkdown(`**${escapeMd(layer.name)}** — ${escapeMd(layer.op)}`);
  if (layer.native_op !== layer.op) m.appendMarkdown(` (${escapeMd(layer.native_op)})`);
  m.appendMarkdown('\n\n');
  m.appendMarkdown(`Output shape: ${formatShape(layer.output_shape)}  \n`);
  m.appendMarkdown(`Params: ${formatInt(layer.params)} · MACs: ${formatCompact(layer.macs)}`);
  const bn = layer.batchnorm;
  if (bn) {
    m.appendMarkdown(`\n\nBatchNorm: ${bn.channels} channels, ε = ${formatNum(bn.epsilon)}`);
    if (bn.gamma) m.appendMarkdown(`  \nγ: ${range(bn.gamma.min, bn.gamma.max)}`);
    if (bn.running_var) m.appendMarkdown(`  \nvar: ${range(bn.running_var.min, bn.running_var.max)}`);
    const flagged = bn.low_variance_channels.length + bn.low_gamma_channels.length;
    if (flagged) {
      m.appendMarkdown(
        `  \n$(warning) ${bn.low_variance_channels.length} low-variance, ${bn.low_gamma_channels.length} low-γ channels`,
      );
      m.supportThemeIcons = true;
    }
  }
  return m;
}

function tensorTooltip(t: TensorSummary): vscode.MarkdownString {
  const m = md();
  m.appendMarkdown(`**${escapeMd(t.name)}** (${t.role})  \n`);
  m.appendMarkdown(`${t.dtype} ${formatShape(t.shape)} · ${formatBytes(t.bytes)} · ${t.source}`);
  const s = t.stats;
  if (s) {
    m.appendMarkdown('\n\n');
    m.appendMarkdown(`mean ${formatNum(s.mean)} · std ${formatNum(s.std)}  \n`);
    m.appendMarkdown(`min ${formatNum(s.min)} · max ${formatNum(s.max)}  \n`);
    m.appendMarkdown(`zero ${formatPct(s.zero_fraction)} · near-zero ${formatPct(s.near_zero_fraction)}`);
  }
  return m;
}

function range(min: number, max: number): string {
  return `[${formatNum(min)}, ${formatNum(max)}]`;
}

function escapeMd(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}
