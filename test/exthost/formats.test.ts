// Keras (.h5, .keras) and TF.js (model.json + shards) in the Model Surgeon editor, in a real extension host:
// open, scripted Fold BatchNorm ({ preview: false }) -> save -> reopen from disk with the core -> no BatchNorm
// left and the same outputs within 1e-4; Freeze BatchNorm -> save -> trainable: false in the file's config;
// a model.json that is not a TF.js model opens into the error view; the Model Explorer lists every format;
// a TF.js model on a non-`file:` file system (an in-memory FileSystemProvider) loads and saves through
// workspace.fs. Fixtures: test/fixtures/keras/ and nsfwjs' mobilenet_v2 (decoded by run-exthost.ts into
// .cache/nsfwjs/), copied under <workspace>/exthost-tmp/.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { unzipSync } from 'fflate';
import * as vscode from 'vscode';
import * as core from '../../src/core/api';
import type { FoldCommandResult, FreezeCommandResult } from '../../src/extension/editorSession';
import { InputDimsStore } from '../../src/extension/inputDims';
import { ModelDocument } from '../../src/extension/modelDocument';
import { MODEL_VIEW_TYPE, TFJS_VIEW_TYPE } from '../../src/extension/modelFiles';
import { api, closeAllEditors, EXTENSION_ID, freshDir, openInEditor, tabOf, waitDirty, waitFor, waitForLog } from './helpers';
import { MemFs } from './memfs';

function repo(): string {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  if (!ext) throw new Error(`extension ${EXTENSION_ID} not found`);
  return ext.extensionPath;
}

function kerasFixture(name: string): string {
  const file = path.join(repo(), 'test', 'fixtures', 'keras', name);
  if (!fs.existsSync(file)) throw new Error(`fixture ${file} is missing`);
  return file;
}

/** nsfwjs' mobilenet_v2 (layers model) / mobilenet_v2_mid (graph model) as files, decoded by run-exthost.ts */
function mobilenetDir(name: 'mobilenet_v2' | 'mobilenet_v2_mid' = 'mobilenet_v2'): string {
  const dir = path.join(repo(), '.cache', 'nsfwjs', name);
  if (!fs.existsSync(path.join(dir, 'model.json'))) throw new Error(`${dir}/model.json is missing (test/e2e/run-exthost.ts decodes it)`);
  return dir;
}

function copyTo(src: string, label: string, name = path.basename(src)): vscode.Uri {
  const dest = path.join(freshDir(label), name);
  fs.copyFileSync(src, dest);
  return vscode.Uri.file(dest);
}

/** a copy of a TF.js model folder; returns the uri of its model.json */
function copyTfjs(srcDir: string, label: string): vscode.Uri {
  const dir = freshDir(label);
  for (const f of fs.readdirSync(srcDir)) fs.copyFileSync(path.join(srcDir, f), path.join(dir, f));
  return vscode.Uri.file(path.join(dir, 'model.json'));
}

async function batchNorms(model: core.Model): Promise<number> {
  return (await core.inspectAsync(model)).layers.filter((l) => l.op === 'BatchNorm').length;
}

function fold(uri: vscode.Uri): Thenable<FoldCommandResult | undefined> {
  return vscode.commands.executeCommand<FoldCommandResult | undefined>('modelSurgeon.foldBatchNorm', uri, { preview: false });
}

function freeze(uri: vscode.Uri): Thenable<FreezeCommandResult | undefined> {
  return vscode.commands.executeCommand<FreezeCommandResult | undefined>('modelSurgeon.freezeBatchNorm', uri, { preview: false });
}

async function save(uri: vscode.Uri, viewType = MODEL_VIEW_TYPE): Promise<void> {
  await openInEditor(uri, viewType);
  await vscode.commands.executeCommand('workbench.action.files.save');
  await waitDirty(uri, false);
}

/** every layer config of a Keras config tree (nested models included) with its class name */
function kerasLayers(config: unknown): Array<{ class_name: string; config: Record<string, unknown> }> {
  const out: Array<{ class_name: string; config: Record<string, unknown> }> = [];
  const visit = (x: unknown): void => {
    if (Array.isArray(x)) {
      for (const v of x) visit(v);
    } else if (typeof x === 'object' && x !== null) {
      const o = x as Record<string, unknown>;
      if (typeof o.class_name === 'string' && typeof o.config === 'object' && o.config !== null) {
        out.push({ class_name: o.class_name, config: o.config as Record<string, unknown> });
      }
      for (const v of Object.values(o)) visit(v);
    }
  };
  visit(config);
  return out;
}

/** Fold (scripted) -> save -> reopen from disk: no BatchNorm left, same outputs as the original within 1e-4. */
async function foldSaveReopen(uri: vscode.Uri, original: string, expectFolded: number, viewType = MODEL_VIEW_TYPE): Promise<FoldCommandResult> {
  const before = await core.loadModel(original);
  const bnBefore = await batchNorms(before);
  await openInEditor(uri, viewType);
  const result = await fold(uri);
  assert.ok(result, 'modelSurgeon.foldBatchNorm returned undefined (see the Model Surgeon log)');
  assert.equal(result.folded, expectFolded);
  assert.match(result.engine ?? '', /^tfjs-(node|wasm|cpu)$/, `engine ${result.engine}`);
  assert.ok(result.max_rel_error < 1e-4, `max_rel_error ${result.max_rel_error}`);
  await waitDirty(uri, true);
  assert.equal(await batchNorms(await core.loadModel(uri.fsPath)), bnBefore, 'folding must not write the file before it is saved');

  await save(uri, viewType);
  const saved = await core.loadModel(uri.fsPath);
  assert.equal(saved.format, before.format, 'saving changed the format');
  assert.equal(await batchNorms(saved), bnBefore - expectFolded, 'BatchNorm layers left in the saved file');
  const check = await core.verify(before, saved);
  assert.ok(check.max_rel_error < 1e-4, `saved model differs from the original: max_rel_error ${check.max_rel_error} (${check.engine})`);
  return result;
}

describe('Keras and TF.js models', function () {
  this.timeout(180_000);

  afterEach(async () => {
    await closeAllEditors();
  });

  it('a .keras file opens in the Model Surgeon editor by default and folds -> save -> reopen: 0 BatchNorm, outputs within 1e-4', async () => {
    const uri = copyTo(kerasFixture('seq_conv.keras'), 'keras-fold');
    await vscode.commands.executeCommand('vscode.open', uri);
    const tab = await waitFor(() => tabOf(uri), 'seq_conv.keras to open');
    assert.ok(tab.input instanceof vscode.TabInputCustom, `seq_conv.keras did not open in a custom editor: ${JSON.stringify(tab.input)}`);
    assert.equal(tab.input.viewType, MODEL_VIEW_TYPE);
    await foldSaveReopen(uri, kerasFixture('seq_conv.keras'), 3);
  });

  it('a Keras 2 .h5 folds the foldable BatchNorms (functional model, 2 skipped) and saves', async () => {
    const uri = copyTo(kerasFixture('func_mixed.h5'), 'h5-fold');
    const result = await foldSaveReopen(uri, kerasFixture('func_mixed.h5'), 4);
    assert.equal(result.skipped, 2);
  });

  it('a TF.js layers model.json (quantized mobilenet_v2) folds 52 BatchNorms; notes tell float32; saved shards reload', async () => {
    const uri = copyTfjs(mobilenetDir(), 'tfjs-fold');
    const result = await foldSaveReopen(uri, path.join(mobilenetDir(), 'model.json'), 52, TFJS_VIEW_TYPE);
    assert.ok(result.notes.some((n) => /float32/.test(n)), `notes: ${JSON.stringify(result.notes)}`);
    const json = JSON.parse(fs.readFileSync(uri.fsPath, 'utf8')) as { modelTopology: unknown; weightsManifest: Array<{ paths: string[] }> };
    assert.equal(kerasLayers(json.modelTopology).filter((l) => l.class_name === 'BatchNormalization').length, 0, 'BatchNormalization left in model.json');
    for (const p of json.weightsManifest.flatMap((g) => g.paths)) {
      assert.ok(fs.existsSync(path.join(path.dirname(uri.fsPath), p)), `shard ${p} named by the saved model.json is missing`);
    }
  });

  it('a TF.js graph model.json opens; nothing to fold (the converter fused its BatchNorms); no Freeze BatchNorm', async () => {
    const uri = copyTfjs(mobilenetDir('mobilenet_v2_mid'), 'tfjs-graph');
    const tab = await openInEditor(uri, TFJS_VIEW_TYPE);
    const result = await fold(uri);
    assert.ok(result, 'modelSurgeon.foldBatchNorm returned undefined');
    assert.equal(result.folded, 0);
    assert.equal(await freeze(uri), undefined);
    await waitForLog('Freeze BatchNorm is not available for tfjs-graph models');
    assert.equal(tab.isDirty, false);
    assert.equal((await core.loadModel(uri.fsPath)).format, 'tfjs-graph');
  });

  it('Freeze BatchNorm on a .keras file -> save: every BatchNormalization has trainable: false in config.json', async () => {
    const uri = copyTo(kerasFixture('func_mixed.keras'), 'keras-freeze');
    const result = await freeze(uri);
    assert.ok(result, 'modelSurgeon.freezeBatchNorm returned undefined (see the Model Surgeon log)');
    assert.equal(result.frozen, 6);
    await waitDirty(uri, true);
    await save(uri);
    const entries = unzipSync(fs.readFileSync(uri.fsPath));
    const configJson = entries['config.json'];
    assert.ok(configJson, 'the saved .keras has no config.json');
    const bns = kerasLayers(JSON.parse(new TextDecoder().decode(configJson))).filter((l) => l.class_name === 'BatchNormalization');
    assert.equal(bns.length, 6);
    for (const bn of bns) assert.equal(bn.config.trainable, false, `${String(bn.config.name)} is still trainable`);
    // frozen already: a second freeze changes nothing
    const again = await freeze(uri);
    assert.equal(again?.frozen, 0);
    // undo brings the trainable BatchNorms back
    await openInEditor(uri);
    await vscode.commands.executeCommand('undo');
    await waitDirty(uri, true);
  });

  it('Freeze BatchNorm on a Keras 2 .h5 -> save -> the model_config read back has trainable: false', async () => {
    const uri = copyTo(kerasFixture('seq_conv.h5'), 'h5-freeze');
    const result = await freeze(uri);
    assert.equal(result?.frozen, 3);
    await save(uri);
    const saved = await core.loadModel(uri.fsPath);
    assert.equal(saved.format, 'keras-h5');
    // the core refuses to freeze what is frozen already: every BatchNorm of the saved file is frozen
    assert.deepEqual(core.freezeBatchNorm(saved).frozen, []);
    const check = await core.verify(await core.loadModel(kerasFixture('seq_conv.h5')), saved);
    assert.ok(check.max_abs_error === 0, `freezing changed the outputs: ${check.max_abs_error}`);
  });

  it('Freeze BatchNorm on an ONNX model: one error, nothing changes', async () => {
    const uri = copyTo(path.join(vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? '', 'fcn_tiny.onnx'), 'onnx-freeze');
    const tab = await openInEditor(uri);
    assert.equal(await freeze(uri), undefined);
    await waitForLog('Freeze BatchNorm: Freeze BatchNorm is not available for onnx models');
    assert.equal(tab.isDirty, false);
  });

  it('a model.json that is not a TF.js model opens into the error view', async () => {
    const dir = freshDir('not-tfjs');
    const uri = vscode.Uri.file(path.join(dir, 'model.json'));
    fs.writeFileSync(uri.fsPath, JSON.stringify({ name: 'not a model', version: 1 }));
    await vscode.commands.executeCommand('modelSurgeon.openInModelSurgeon', uri);
    const tab = await waitFor(() => tabOf(uri), 'model.json to open');
    assert.ok(tab.input instanceof vscode.TabInputCustom && tab.input.viewType === TFJS_VIEW_TYPE, 'model.json did not open in Model Surgeon');
    await waitForLog('Opening model.json: model.json: JSON that is not a TF.js model.json');
    assert.equal(await fold(uri), undefined);
  });

  it('the Model Explorer lists .onnx, .h5, .keras and TF.js model.json files (not other JSON, not node_modules)', async () => {
    copyTo(kerasFixture('seq_conv1d.keras'), 'explorer');
    copyTo(kerasFixture('seq_conv1d.h5'), 'explorer');
    const tfjs = copyTfjs(mobilenetDir(), 'explorer-tfjs');
    const other = path.join(freshDir('explorer-json'), 'model.json');
    fs.writeFileSync(other, '{"dependencies": {}}');
    const hidden = path.join(vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? '', 'node_modules', 'x');
    fs.mkdirSync(hidden, { recursive: true });
    fs.copyFileSync(kerasFixture('seq_conv.keras'), path.join(hidden, 'hidden.keras'));

    const { explorer } = await api();
    const files = (await explorer.getChildren()) ?? [];
    const items = await Promise.all(files.map((f) => explorer.getTreeItem(f)));
    const uris = items.map((i) => i.resourceUri?.fsPath ?? '');
    const names = items.map((i) => (typeof i.label === 'string' ? i.label : (i.label?.label ?? '')));
    for (const name of ['fcn_tiny.onnx', 'seq_conv1d.keras', 'seq_conv1d.h5']) assert.ok(names.includes(name), `not listed: ${name} (${names.join(', ')})`);
    assert.ok(uris.includes(tfjs.fsPath), `the TF.js model.json is not listed: ${uris.join(', ')}`);
    assert.ok(!uris.includes(other), 'a model.json that is not a TF.js model is listed');
    assert.ok(!names.includes('hidden.keras'), 'a model under node_modules is listed');

    // the TF.js model expands into its layers
    const index = uris.indexOf(tfjs.fsPath);
    const layers = (await explorer.getChildren(files[index])) ?? [];
    assert.ok(layers.length > 100, `mobilenet_v2 should have >100 layers in the explorer, got ${layers.length}`);
    fs.rmSync(path.join(vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? '', 'node_modules'), { recursive: true, force: true });
  });

  it('hot exit: the backup of an edited TF.js model (a zip bundle) restores the edit with its shards', async () => {
    const uri = copyTfjs(mobilenetDir(), 'backup');
    const log = vscode.window.createOutputChannel('Model Surgeon backup test', { log: true });
    const state = new Map<string, unknown>();
    const memento: vscode.Memento = {
      keys: () => [...state.keys()],
      get: <T>(key: string, fallback?: T) => (state.has(key) ? (state.get(key) as T) : fallback) as T,
      update: async (key: string, value: unknown) => void state.set(key, value),
    };
    const dims = new InputDimsStore(memento);
    const none = new vscode.CancellationTokenSource().token;
    const docs: ModelDocument[] = [];
    try {
      const doc = await ModelDocument.create(uri, { backupId: undefined, untitledDocumentData: undefined }, log, dims);
      docs.push(doc);
      assert.ok(doc.model, doc.loadError);
      doc.makeEdit('Fold BatchNorm (52)', core.foldBatchNorm(doc.model).model);
      const dest = vscode.Uri.file(path.join(freshDir('backup-dest'), 'backup.bin'));
      await doc.backup(dest, none);
      assert.deepEqual([...fs.readFileSync(dest.fsPath).subarray(0, 2)], [0x50, 0x4b], 'the backup of a TF.js model should be a zip bundle');
      // the shards on disk are not what the backup needs: it carries its own
      for (const f of fs.readdirSync(path.dirname(uri.fsPath))) if (f !== 'model.json') fs.rmSync(path.join(path.dirname(uri.fsPath), f));
      const restored = await ModelDocument.create(uri, { backupId: dest.toString(), untitledDocumentData: undefined }, log, dims);
      docs.push(restored);
      assert.ok(restored.model, restored.loadError);
      assert.equal(restored.model.format, 'tfjs-layers');
      assert.equal(await batchNorms(restored.model), 0, 'the restored model should be the folded one');
    } finally {
      for (const d of docs) d.dispose();
      dims.dispose();
      log.dispose();
    }
  });

  it('a TF.js model on a non-file file system loads its shards and saves through workspace.fs', async () => {
    const memfs = new MemFs();
    const reg = vscode.workspace.registerFileSystemProvider('mstest', memfs, { isCaseSensitive: true });
    try {
      const dir = mobilenetDir();
      for (const f of fs.readdirSync(dir)) memfs.put(`/m/${f}`, fs.readFileSync(path.join(dir, f)));
      const uri = vscode.Uri.from({ scheme: 'mstest', path: '/m/model.json' });
      await openInEditor(uri, TFJS_VIEW_TYPE);
      const result = await fold(uri);
      assert.equal(result?.folded, 52);
      await save(uri, TFJS_VIEW_TYPE);
      const json = JSON.parse(new TextDecoder().decode(memfs.get('/m/model.json'))) as { modelTopology: unknown; weightsManifest: Array<{ paths: string[] }> };
      assert.equal(kerasLayers(json.modelTopology).filter((l) => l.class_name === 'BatchNormalization').length, 0);
      for (const p of json.weightsManifest.flatMap((g) => g.paths)) assert.ok(memfs.has(`/m/${p}`), `shard ${p} was not written through workspace.fs`);
      // a shard path that leaves the folder is refused
      memfs.put('/evil/model.json', new TextEncoder().encode(JSON.stringify({ ...json, weightsManifest: [{ paths: ['../m/x.bin'], weights: [] }] })));
      await openInEditor(vscode.Uri.from({ scheme: 'mstest', path: '/evil/model.json' }), TFJS_VIEW_TYPE);
      await waitForLog("shard path '../m/x.bin' resolves outside the model's folder");
    } finally {
      await closeAllEditors();
      reg.dispose();
    }
  });
});
