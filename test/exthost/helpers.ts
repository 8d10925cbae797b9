// Helpers for the extension-host suites: temp copies of the samples inside the opened workspace, bounded
// waits, and closing editors without "Save changes?" dialogs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ModelSurgeonApi } from '../../src/extension/extension';

export const EXTENSION_ID = 'model-surgeon.model-surgeon';
export const VIEW_TYPE = 'modelSurgeon.modelEditor';
export const TFJS_VIEW_TYPE = 'modelSurgeon.tfjsModelEditor';

/** The folder test/e2e/run-exthost.ts opens: a fresh copy of samples/. */
export function workspaceDir(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) throw new Error('the extension-host tests need the workspace folder run-exthost.ts opens');
  return folder.uri.fsPath;
}

export function sample(name: string): string {
  const file = path.join(workspaceDir(), name);
  if (!fs.existsSync(file)) throw new Error(`${name} is not in the test workspace (a copy of samples/)`);
  return file;
}

let counter = 0;
/** A new empty folder under <workspace>/exthost-tmp/ for one test. */
export function freshDir(label: string): string {
  const dir = path.join(workspaceDir(), 'exthost-tmp', `${label}-${++counter}-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Copy a sample into a fresh folder; returns its uri. */
export function copySample(name: string, label: string): vscode.Uri {
  const dest = path.join(freshDir(label), name);
  fs.copyFileSync(sample(name), dest);
  return vscode.Uri.file(dest);
}

export async function api(): Promise<ModelSurgeonApi> {
  const ext = vscode.extensions.getExtension<ModelSurgeonApi>(EXTENSION_ID);
  if (!ext) throw new Error(`extension ${EXTENSION_ID} not found`);
  return ext.activate();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `probe` until it returns something other than undefined/false; fail with `what` after `timeoutMs`. */
export async function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(50);
  }
}

/** The tab showing `uri`, if any. */
export function tabOf(uri: vscode.Uri): vscode.Tab | undefined {
  for (const group of vscode.window.tabGroups.all) {
    for (const tab of group.tabs) {
      const input = tab.input;
      if ((input instanceof vscode.TabInputCustom || input instanceof vscode.TabInputText) && input.uri.toString() === uri.toString()) return tab;
    }
  }
  return undefined;
}

export async function waitDirty(uri: vscode.Uri, dirty: boolean): Promise<void> {
  await waitFor(() => tabOf(uri)?.isDirty === dirty, `${path.basename(uri.fsPath)} to be ${dirty ? 'dirty' : 'clean'}`);
}

/** Open in the Model Surgeon editor (TF.js model.json files: TFJS_VIEW_TYPE) and wait until it is the active tab. */
export async function openInEditor(uri: vscode.Uri, viewType = VIEW_TYPE): Promise<vscode.Tab> {
  await vscode.commands.executeCommand('vscode.openWith', uri, viewType);
  return waitFor(() => {
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    return tab?.input instanceof vscode.TabInputCustom && tab.input.uri.toString() === uri.toString() ? tab : undefined;
  }, `${path.basename(uri.fsPath)} to be the active Model Surgeon tab`);
}

/**
 * Close every editor without a "Save changes?" dialog: each Model Surgeon tab is reverted and closed (the tab
 * API's dirty flag may lag behind an edit that was just made, so every custom tab goes this way).
 */
export async function closeAllEditors(): Promise<void> {
  const custom = vscode.window.tabGroups.all.flatMap((g) => g.tabs).map((t) => t.input).filter((i) => i instanceof vscode.TabInputCustom);
  for (const input of custom) {
    await vscode.commands.executeCommand('vscode.openWith', input.uri, input.viewType);
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  }
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  await waitFor(() => vscode.window.tabGroups.all.every((g) => g.tabs.length === 0), 'all editors to close');
}

/**
 * The "Model Surgeon" output channel's log file(s): `<logUri>/Model Surgeon.log` in VS Code 1.139; older
 * versions wrote `N-Model Surgeon.log` into an `output_logging_<time>` folder next to it.
 */
export function modelSurgeonLogs(logFolder: vscode.Uri): string[] {
  const candidates = [path.join(logFolder.fsPath, 'Model Surgeon.log')];
  const parent = path.dirname(logFolder.fsPath);
  try {
    for (const e of fs.readdirSync(parent)) {
      if (!e.startsWith('output_logging_')) continue;
      for (const f of fs.readdirSync(path.join(parent, e))) if (f.endsWith('Model Surgeon.log')) candidates.push(path.join(parent, e, f));
    }
  } catch {
    // no such folder
  }
  return candidates.filter((f) => fs.existsSync(f));
}

/** Wait until the Model Surgeon log contains `text`; returns the matching line. */
export async function waitForLog(text: string, timeoutMs = 20_000): Promise<string> {
  const { logFolder } = await api();
  return waitFor(
    () => {
      for (const file of modelSurgeonLogs(logFolder)) {
        const line = fs.readFileSync(file, 'utf8').split('\n').find((l) => l.includes(text));
        if (line) return line;
      }
      return undefined;
    },
    `the Model Surgeon log (${logFolder.fsPath}) to contain "${text}"`,
    timeoutMs,
  );
}
