// The Model Surgeon custom editor in a real extension host: open, scripted fold (modelSurgeon.foldBatchNorm
// with { preview: false }), save / undo / redo / revert through the workbench's own commands, diagnostics,
// broken files, the Model Explorer. Every test works on its own copy under <workspace>/exthost-tmp/.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import * as core from '../../src/core/api';
import { OnnxModel } from '../../src/core/formats/onnx/model';
import { makeTensorLike, readTensorAsFloat32 } from '../../src/core/formats/onnx/tensor';
import type { FoldCommandResult } from '../../src/extension/editorSession';
import {
  api,
  closeAllEditors,
  copySample,
  freshDir,
  openInEditor,
  sample,
  VIEW_TYPE,
  waitDirty,
  waitFor,
  waitForLog,
} from './helpers';

const MODEL = 'fcn_tiny.onnx';

function batchNormCount(model: core.Model): number {
  assert.ok(model instanceof OnnxModel, 'expected an ONNX model');
  return model.graph.node.filter((n) => n.opType === 'BatchNormalization').length;
}

async function bnOnDisk(uri: vscode.Uri): Promise<number> {
  return batchNormCount(await core.loadModel(uri.fsPath));
}

function fold(uri: vscode.Uri | undefined): Thenable<FoldCommandResult | undefined> {
  return vscode.commands.executeCommand<FoldCommandResult | undefined>('modelSurgeon.foldBatchNorm', uri, { preview: false });
}

async function save(uri: vscode.Uri): Promise<void> {
  await openInEditor(uri); // save acts on the active editor
  await vscode.commands.executeCommand('workbench.action.files.save');
  await waitDirty(uri, false);
}

describe('Model Surgeon editor', function () {
  this.timeout(120_000);

  afterEach(async () => {
    await closeAllEditors();
  });

  it('vscode.openWith opens fcn_tiny.onnx in the Model Surgeon custom editor', async () => {
    const uri = copySample(MODEL, 'open');
    await vscode.commands.executeCommand('vscode.openWith', uri, VIEW_TYPE);
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    assert.ok(tab, 'no active tab after vscode.openWith');
    assert.ok(tab.input instanceof vscode.TabInputCustom, `active tab input is not a custom editor: ${JSON.stringify(tab.input)}`);
    assert.equal(tab.input.viewType, VIEW_TYPE);
    assert.equal(tab.input.uri.toString(), uri.toString());
    assert.equal(tab.isDirty, false);
  });

  it('folds with { preview: false }, saves, undoes, saves again and redoes', async () => {
    const uri = copySample(MODEL, 'fold');
    const original = await core.loadModel(sample(MODEL));
    assert.equal(batchNormCount(original), 5, `${MODEL} should have 5 BatchNormalization nodes`);

    // not open yet: the command opens the editor first
    const result = await fold(uri);
    assert.ok(result, 'modelSurgeon.foldBatchNorm returned undefined (see the Model Surgeon log)');
    assert.equal(result.folded, 5);
    assert.equal(result.skipped, 0);
    assert.ok(result.max_rel_error < 1e-5, `max_rel_error ${result.max_rel_error}`);
    assert.ok(Number.isFinite(result.max_abs_error));
    await waitDirty(uri, true);
    assert.equal(await bnOnDisk(uri), 5, 'folding must not write the file before it is saved');

    await save(uri);
    const saved = await core.loadModel(uri.fsPath);
    assert.equal(batchNormCount(saved), 0, 'the saved file still has BatchNormalization nodes');
    const check = await core.verify(original, saved);
    assert.ok(check.max_rel_error < 1e-5, `saved model differs from the original: max_rel_error ${check.max_rel_error}`);

    await vscode.commands.executeCommand('undo');
    await waitDirty(uri, true);
    await save(uri);
    assert.equal(await bnOnDisk(uri), 5, 'after undo + save the file should have its 5 BatchNorms back');
    assert.deepEqual(fs.readFileSync(uri.fsPath), fs.readFileSync(sample(MODEL)), 'undo + save should restore the exact bytes');

    await vscode.commands.executeCommand('redo');
    await waitDirty(uri, true);
    await save(uri);
    assert.equal(await bnOnDisk(uri), 0, 'after redo + save the file should be folded again');
  });

  it('File: Revert after a fold drops the edit and leaves the file unchanged', async () => {
    const uri = copySample(MODEL, 'revert');
    const before = fs.readFileSync(uri.fsPath);
    await openInEditor(uri);
    const result = await fold(uri);
    assert.equal(result?.folded, 5);
    await waitDirty(uri, true);

    await vscode.commands.executeCommand('workbench.action.files.revert');
    await waitDirty(uri, false);
    assert.deepEqual(fs.readFileSync(uri.fsPath), before, 'revert changed the file on disk');
    // the reverted document folds again from the file's model (5 BatchNorms, not 0)
    const again = await fold(uri);
    assert.equal(again?.folded, 5, 'after revert the document should hold the unfolded model again');
    await waitDirty(uri, true);
  });

  it('a model without foldable BatchNorm: folded 0, nothing changes', async () => {
    const uri = copySample('unfoldable.onnx', 'nofold');
    const result = await fold(uri);
    assert.ok(result, 'expected a result, not undefined');
    assert.equal(result.folded, 0);
    assert.ok(result.skipped > 0, 'unfoldable.onnx should report skipped candidates');
    const tab = await openInEditor(uri);
    assert.equal(tab.isDirty, false);
  });

  it('publishes findings to the Problems panel (bn-zero-variance)', async () => {
    const dir = freshDir('findings');
    const uri = vscode.Uri.file(path.join(dir, 'zero_var.onnx'));
    const model = await core.loadModel(sample(MODEL));
    assert.ok(model instanceof OnnxModel);
    const bn = model.graph.node.find((n) => n.opType === 'BatchNormalization');
    const varName = bn?.input[4];
    const init = model.graph.initializer.find((t) => t.name === varName);
    assert.ok(init, 'the first BatchNorm of fcn_tiny has no running_var initializer');
    const data = readTensorAsFloat32(init, model.external);
    data[0] = 0;
    const zeroed = makeTensorLike(init, data, init.dims.map(Number));
    const graph = { ...model.graph, initializer: model.graph.initializer.map((t) => (t === init ? zeroed : t)) };
    await core.saveModel(model.derive({ ...model.proto, graph }), uri.fsPath);

    await openInEditor(uri);
    const diags = await waitFor(() => {
      const d = vscode.languages.getDiagnostics(uri);
      return d.length > 0 ? d : undefined;
    }, 'diagnostics for zero_var.onnx');
    const codes = diags.map((d) => (typeof d.code === 'object' ? d.code.value : d.code));
    assert.ok(codes.includes('bn-zero-variance'), `diagnostic codes: ${codes.join(', ')}`);
    const d = diags.find((x) => (typeof x.code === 'object' ? x.code.value : x.code) === 'bn-zero-variance');
    assert.equal(d?.source, 'Model Surgeon');
    assert.match(d?.message ?? '', /enc1\.1/);

  });

  it('a garbage .onnx opens into the error view; folding it returns undefined', async () => {
    const dir = freshDir('broken');
    const uri = vscode.Uri.file(path.join(dir, 'broken.onnx'));
    fs.writeFileSync(uri.fsPath, 'this is not a model');

    // resolves (no exception) and shows our editor with the error view
    await vscode.commands.executeCommand('vscode.openWith', uri, VIEW_TYPE);
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    assert.ok(tab?.input instanceof vscode.TabInputCustom && tab.input.viewType === VIEW_TYPE, 'broken.onnx did not open in Model Surgeon');
    const line = await waitForLog('Opening broken.onnx: broken.onnx: not an ONNX model');
    assert.doesNotMatch(line, /\n|at .+:\d+:\d+/, 'the log line should be one message, not a stack');

    const result = await fold(uri);
    assert.equal(result, undefined);
    await waitForLog('Fold BatchNorm: broken.onnx: not an ONNX model');
    assert.equal(tab.isDirty, false);
    assert.deepEqual(vscode.languages.getDiagnostics(uri), []);
  });

  it('the Model Explorer lists the sample models and their layers', async () => {
    const { explorer } = await api();
    const files = (await explorer.getChildren()) ?? [];
    const items = await Promise.all(files.map((f) => explorer.getTreeItem(f)));
    const labels = items.map((i) => (typeof i.label === 'string' ? i.label : (i.label?.label ?? '')));
    for (const name of ['fcn_tiny.onnx', 'convtranspose_bn.onnx', 'linear_bn1d.onnx', 'unfoldable.onnx']) {
      assert.ok(labels.includes(name), `Model Explorer does not list ${name}: ${labels.join(', ')}`);
    }
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.toString();
    const index = items.findIndex((i) => i.label === MODEL && i.resourceUri?.toString() === `${root}/${MODEL}`);
    assert.ok(index >= 0, `no Model Explorer node for <workspace>/${MODEL}`);
    const layers = (await explorer.getChildren(files[index])) ?? [];
    assert.equal(layers.length, 21, `${MODEL} should have 21 layers in the explorer`);
    const first = await explorer.getTreeItem(layers[0]);
    assert.equal(first.label, 'Conv /enc1/enc1.0/Conv');
    assert.equal(first.command?.command, 'modelSurgeon.revealLayer');
  });
});
