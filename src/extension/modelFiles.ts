import * as vscode from 'vscode';
import { baseName, looksLikeTfjsModelJson } from './loading';

/** The custom editor for .onnx / .h5 / .keras (`priority: default`). */
export const MODEL_VIEW_TYPE = 'modelSurgeon.modelEditor';
/** The same editor for TF.js model.json files (`priority: option`: a model.json is JSON too). */
export const TFJS_VIEW_TYPE = 'modelSurgeon.tfjsModelEditor';
export const VIEW_TYPES = [MODEL_VIEW_TYPE, TFJS_VIEW_TYPE] as const;

/** Single-file model formats, found by extension (the content decides the format when opened). */
export const MODEL_FILE_GLOB = '**/*.{onnx,h5,keras}';
/** TF.js models: only the model.json files that sniff as TF.js count (see looksLikeTfjsModelJson). */
export const MODEL_JSON_GLOB = '**/model.json';
export const MODEL_EXCLUDE = '**/node_modules/**';
/** extensions for the open dialog */
export const MODEL_EXTENSIONS = ['onnx', 'h5', 'keras', 'json'];

const MODEL_FILE_RE = /\.(onnx|h5|keras)$/i;

export function isModelJsonName(uri: vscode.Uri): boolean {
  return baseName(uri).toLowerCase() === 'model.json';
}

/** Whether a file looks like a model by its name (.onnx/.h5/.keras, model.json). */
export function isModelUri(uri: vscode.Uri): boolean {
  return MODEL_FILE_RE.test(uri.path) || isModelJsonName(uri);
}

/** The view type to open a file with: JSON files (TF.js model.json) get the `option` editor. */
export function viewTypeFor(uri: vscode.Uri): string {
  return /\.json$/i.test(uri.path) ? TFJS_VIEW_TYPE : MODEL_VIEW_TYPE;
}

/** The workspace's model files: *.onnx/*.h5/*.keras and the model.json files that are TF.js models. */
export async function findModelFiles(maxResults?: number): Promise<vscode.Uri[]> {
  if (!vscode.workspace.workspaceFolders?.length) return [];
  const [files, jsons] = await Promise.all([
    vscode.workspace.findFiles(MODEL_FILE_GLOB, MODEL_EXCLUDE, maxResults),
    vscode.workspace.findFiles(MODEL_JSON_GLOB, MODEL_EXCLUDE, maxResults),
  ]);
  const tfjs = await Promise.all(jsons.map(async (uri) => ((await looksLikeTfjsModelJson(uri)) ? uri : undefined)));
  const all = [...files, ...tfjs.filter((u): u is vscode.Uri => u !== undefined)];
  all.sort((a, b) => vscode.workspace.asRelativePath(a).localeCompare(vscode.workspace.asRelativePath(b)));
  return maxResults === undefined ? all : all.slice(0, maxResults);
}
