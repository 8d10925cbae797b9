import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { ModelExplorer } from './explorer';
import { registerHeatmap } from './heatmapPanel';
import { InputDimsStore } from './inputDims';
import { ModelEditorProvider } from './modelEditorProvider';

/**
 * What activate() returns (`vscode.extensions.getExtension('model-surgeon.model-surgeon').exports`): read-only
 * hooks for other extensions and the extension-host tests.
 */
export interface ModelSurgeonApi {
  /** the Model Explorer's tree (files -> layers -> tensors) */
  readonly explorer: vscode.TreeDataProvider<unknown>;
  /** this extension's log folder (context.logUri): the "Model Surgeon" output channel's log file is in it */
  readonly logFolder: vscode.Uri;
  /** the layer selected in the Model Surgeon editor of `uri` (null: none selected, or no editor open) */
  selectedLayer(uri: vscode.Uri): string | null;
}

/** Activation does no model work: everything is lazy (documents load when opened, tree nodes when expanded). */
export function activate(context: vscode.ExtensionContext): ModelSurgeonApi {
  const log = vscode.window.createOutputChannel('Model Surgeon', { log: true });
  const diagnostics = vscode.languages.createDiagnosticCollection('model-surgeon');
  const dims = new InputDimsStore(context.workspaceState);
  const editors = new ModelEditorProvider(context.extensionUri, log, diagnostics, dims);
  const explorer = new ModelExplorer(editors, log, dims);
  context.subscriptions.push(
    log,
    diagnostics,
    dims,
    editors,
    ModelEditorProvider.register(editors),
    explorer,
    vscode.window.createTreeView('modelSurgeon.explorer', { treeDataProvider: explorer, showCollapseAll: true }),
  );
  registerCommands(context, editors, explorer, log);
  registerHeatmap(context, editors, log);
  return { explorer, logFolder: context.logUri, selectedLayer: (uri) => editors.sessionFor(uri)?.selectedLayer ?? null };
}

export function deactivate(): void {
  // everything is disposed through context.subscriptions
}
