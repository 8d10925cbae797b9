import * as path from 'node:path';
import * as vscode from 'vscode';
import * as core from '../core/api';
import type { Model } from '../core/api';

export function baseName(uri: vscode.Uri): string {
  return path.posix.basename(uri.path);
}

/** Folder that relative paths inside the model (external data) resolve against. */
export function baseDirOf(uri: vscode.Uri): string {
  return uri.scheme === 'file' ? path.dirname(uri.fsPath) : path.posix.dirname(uri.path);
}

/**
 * Load a model from any file system. Local (and remote-workspace) files go through the core's path loader,
 * which reads external data lazily next to the file; other schemes are read whole through workspace.fs.
 */
export async function loadModelFromUri(uri: vscode.Uri): Promise<Model> {
  if (uri.scheme === 'file') return core.loadModel(uri.fsPath);
  const bytes = await vscode.workspace.fs.readFile(uri);
  return core.loadModelBytes(bytes, baseDirOf(uri), baseName(uri));
}

/** Write a model to `uri`: atomically through the core on local files, through workspace.fs elsewhere. */
export async function saveModelToUri(model: Model, uri: vscode.Uri): Promise<void> {
  if (uri.scheme === 'file') {
    await core.saveModel(model, uri.fsPath);
  } else {
    await vscode.workspace.fs.writeFile(uri, core.serialize(model));
  }
}

export async function fileSize(uri: vscode.Uri): Promise<number | undefined> {
  try {
    return (await vscode.workspace.fs.stat(uri)).size;
  } catch {
    return undefined;
  }
}

/** What identifies a version of a file on disk (to tell our own writes and no-op events from real changes). */
export interface DiskStamp {
  mtime: number;
  size: number;
}

export async function diskStamp(uri: vscode.Uri): Promise<DiskStamp | null> {
  try {
    const st = await vscode.workspace.fs.stat(uri);
    return { mtime: st.mtime, size: st.size };
  } catch {
    return null;
  }
}

export function sameStamp(a: DiskStamp | null, b: DiskStamp | null): boolean {
  return a !== null && b !== null && a.mtime === b.mtime && a.size === b.size;
}
