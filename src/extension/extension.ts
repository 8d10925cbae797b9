import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { ModelExplorer } from './explorer';
import { ModelEditorProvider } from './modelEditorProvider';

/** Activation does no model work: everything is lazy (documents load when opened, tree nodes when expanded). */
export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Model Surgeon', { log: true });
  const diagnostics = vscode.languages.createDiagnosticCollection('model-surgeon');
  const editors = new ModelEditorProvider(context.extensionUri, log, diagnostics);
  const explorer = new ModelExplorer(editors, log);
  context.subscriptions.push(
    log,
    diagnostics,
    editors,
    ModelEditorProvider.register(editors),
    explorer,
    vscode.window.createTreeView('modelSurgeon.explorer', { treeDataProvider: explorer, showCollapseAll: true }),
  );
  registerCommands(context, editors, explorer, log);
}

export function deactivate(): void {
  // everything is disposed through context.subscriptions
}
