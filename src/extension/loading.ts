import { open } from 'node:fs/promises';
import * as path from 'node:path';
import { unzipSync, zipSync, type Zippable } from 'fflate';
import * as vscode from 'vscode';
import * as core from '../core/api';
import type { Model } from '../core/api';
import type { ModelFormat } from '../core/types';

export function baseName(uri: vscode.Uri): string {
  return path.posix.basename(uri.path);
}

/** Folder that relative paths inside the model (external data, TF.js shards) resolve against. */
export function baseDirOf(uri: vscode.Uri): string {
  return uri.scheme === 'file' ? path.dirname(uri.fsPath) : path.posix.dirname(uri.path);
}

/** TF.js formats are a model.json plus weight shards next to it (the others are one file). */
export function isTfjsFormat(format: ModelFormat): boolean {
  return format === 'tfjs-layers' || format === 'tfjs-graph';
}

/**
 * Load a model from any file system.
 *
 * `file:` URIs go through the core's path loader (`loadModel`): ONNX external data and TF.js shards are read
 * next to the file, only inside its folder. This also covers VS Code Remote (SSH, WSL, containers,
 * code-server): the extension is a `workspace` extension, so it runs on the machine that has the files and sees
 * them as `file:` URIs; nothing crosses the connection but the summaries the webview gets.
 *
 * Other schemes (virtual file systems) are read through `workspace.fs`: single-file formats whole; a TF.js
 * model.json together with the shards its `weightsManifest` names (resolved relative to the model.json's
 * folder; absolute paths, URLs and paths leaving the folder are refused), handed to the core as the same zip
 * bundle `serialize()` produces. The core's `fs` is never pointed at a path of a non-`file:` URI.
 */
export async function loadModelFromUri(uri: vscode.Uri): Promise<Model> {
  if (uri.scheme === 'file') return core.loadModel(uri.fsPath);
  const bytes = await vscode.workspace.fs.readFile(uri);
  const name = baseName(uri);
  if (core.sniffFormat(bytes) === 'json') return core.loadModelBytesAsync(await tfjsBundleFromFs(uri, bytes), baseDirOf(uri), name);
  return core.loadModelBytesAsync(bytes, baseDirOf(uri), name);
}

/** The relative shard paths a model.json names (empty when it names none or is not a TF.js model). */
function shardPaths(json: unknown): string[] {
  if (typeof json !== 'object' || json === null || !('weightsManifest' in json)) return [];
  const manifest = (json as { weightsManifest: unknown }).weightsManifest;
  if (!Array.isArray(manifest)) return [];
  const out: string[] = [];
  for (const group of manifest) {
    const paths = typeof group === 'object' && group !== null ? (group as { paths?: unknown }).paths : undefined;
    if (Array.isArray(paths)) for (const p of paths) if (typeof p === 'string' && !out.includes(p)) out.push(p);
  }
  return out;
}

/** A shard path inside the model's folder, normalized; throws for URLs, absolute paths and `..` escapes. */
function safeShardPath(rel: string, what: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(rel)) throw new core.ModelError(`${what}: shard path '${rel}' is a URL; only files next to model.json are read`);
  const norm = path.posix.normalize(rel.replace(/\\/g, '/'));
  if (norm.startsWith('/') || norm === '..' || norm.startsWith('../')) {
    throw new core.ModelError(`${what}: shard path '${rel}' resolves outside the model's folder; refused`);
  }
  return norm;
}

/** model.json + its shards read through workspace.fs, as a TF.js zip bundle the core loads. */
async function tfjsBundleFromFs(uri: vscode.Uri, jsonBytes: Uint8Array): Promise<Uint8Array> {
  const name = baseName(uri);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(jsonBytes).replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new core.ModelError(`${name}: invalid JSON (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
  }
  const dir = vscode.Uri.joinPath(uri, '..');
  const files: Zippable = { 'model.json': [jsonBytes, { level: 0 }] };
  for (const rel of shardPaths(json)) {
    const norm = safeShardPath(rel, name);
    try {
      files[norm] = [await vscode.workspace.fs.readFile(vscode.Uri.joinPath(dir, norm)), { level: 0 }];
    } catch (err) {
      const missing = err instanceof vscode.FileSystemError && err.code === 'FileNotFound';
      throw new core.ModelError(`${name}: weight shard '${rel}' ${missing ? 'is missing' : `cannot be read (${err instanceof Error ? err.message : String(err)})`}`);
    }
  }
  return zipSync(files, { level: 0 });
}

/**
 * Write a model to `uri`: atomically through the core on local files (TF.js: shards first, model.json last);
 * through workspace.fs elsewhere (a TF.js model is unpacked from its bundle: shards first, then the JSON).
 */
export async function saveModelToUri(model: Model, uri: vscode.Uri): Promise<void> {
  if (uri.scheme === 'file') {
    await core.saveModel(model, uri.fsPath);
    return;
  }
  const bytes = core.serialize(model);
  if (!isTfjsFormat(model.format)) {
    await vscode.workspace.fs.writeFile(uri, bytes);
    return;
  }
  const entries = unzipSync(bytes);
  const json = entries['model.json'];
  if (!json) throw new core.ModelError(`cannot save ${baseName(uri)}: the TF.js bundle has no model.json`);
  const dir = vscode.Uri.joinPath(uri, '..');
  for (const [rel, data] of Object.entries(entries)) {
    if (rel !== 'model.json') await vscode.workspace.fs.writeFile(vscode.Uri.joinPath(dir, safeShardPath(rel, baseName(uri))), data);
  }
  await vscode.workspace.fs.writeFile(uri, json);
}

/**
 * Bytes on disk of the model at `uri`: the file; for a TF.js model.json the JSON plus the shards it names
 * (what the summary's "File size" shows). Null when the file cannot be read.
 */
export async function modelBytesOnDisk(uri: vscode.Uri, format: ModelFormat | undefined): Promise<number | null> {
  const size = await fileSize(uri);
  if (size === undefined) return null;
  if (!format || !isTfjsFormat(format)) return size;
  let total = size;
  try {
    const json: unknown = JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(uri)).replace(/^\uFEFF/, ''));
    const dir = vscode.Uri.joinPath(uri, '..');
    for (const rel of shardPaths(json)) total += (await fileSize(vscode.Uri.joinPath(dir, safeShardPath(rel, baseName(uri))))) ?? 0;
  } catch {
    // what cannot be read counts as nothing; opening the model reports it
  }
  return total;
}

/** How much of a model.json is read to tell a TF.js model from other JSON. */
const SNIFF_BYTES = 256 * 1024;

/**
 * Whether a JSON file looks like a TF.js model.json: one of its first SNIFF_BYTES mentions the `modelTopology`
 * or `weightsManifest` key, or a `format` of layers-model / graph-model. Cheap (local files: a partial read);
 * opening the file decides for good.
 */
export async function looksLikeTfjsModelJson(uri: vscode.Uri): Promise<boolean> {
  let head: Uint8Array;
  try {
    if (uri.scheme === 'file') {
      const fh = await open(uri.fsPath, 'r');
      try {
        const buf = new Uint8Array(SNIFF_BYTES);
        const { bytesRead } = await fh.read(buf, 0, SNIFF_BYTES, 0);
        head = buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    } else {
      head = (await vscode.workspace.fs.readFile(uri)).subarray(0, SNIFF_BYTES);
    }
  } catch {
    return false;
  }
  return isTfjsModelJsonHead(new TextDecoder().decode(head));
}

/** the check of looksLikeTfjsModelJson on the text of a file's start */
export function isTfjsModelJsonHead(text: string): boolean {
  if (!/^\uFEFF?\s*\{/.test(text)) return false;
  return /"(modelTopology|weightsManifest)"\s*:/.test(text) || /"format"\s*:\s*"(layers|graph)-model"/.test(text);
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
