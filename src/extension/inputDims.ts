import * as vscode from 'vscode';
import { sanitizeDims } from '../protocol/dims';

const KEY = 'modelSurgeon.inputDims';

type Stored = Record<string, Record<string, number>>;

/**
 * Values of symbolic input dims, remembered per model file in the workspace state (they are a property of how
 * the user wants to look at the file, not of the file: changing them is not an edit). Only values other than
 * the default 1 are stored; a file without stored values is analysed with every symbolic dim = 1.
 */
export class InputDimsStore {
  private readonly _onDidChange = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this._onDidChange.event;

  constructor(private readonly memento: vscode.Memento) {}

  get(uri: vscode.Uri): Record<string, number> {
    const all = this.memento.get<Stored>(KEY, {});
    return sanitizeDims(all[uri.toString()]);
  }

  async set(uri: vscode.Uri, dims: Record<string, number>): Promise<void> {
    const key = uri.toString();
    const clean = Object.fromEntries(Object.entries(sanitizeDims(dims)).filter(([, v]) => v !== 1));
    const all: Stored = { ...this.memento.get<Stored>(KEY, {}) };
    if (Object.keys(clean).length) all[key] = clean;
    else delete all[key];
    await this.memento.update(KEY, all);
    this._onDidChange.fire(uri);
  }

  dispose(): void {
    this._onDidChange.dispose();
  }
}
