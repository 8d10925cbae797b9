// The BatchNorm / Dropout doctor in a real extension host: audit findings in the Problems panel (codes,
// severities, the code link that reveals the layer), modelSurgeon.applyFix with { preview: false } (remove
// Dropout -> save -> no Dropout on disk -> undo restores; a fix that changes the outputs on purpose reports the
// deviation), and clear errors for fixes the model or this version does not have.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import * as core from '../../src/core/api';
import { OnnxModel } from '../../src/core/formats/onnx/model';
import type { FixCommandResult } from '../../src/extension/editorSession';
import { api, closeAllEditors, EXTENSION_ID, freshDir, openInEditor, waitDirty, waitFor, waitForLog } from './helpers';

function fixture(rel: string): string {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  if (!ext) throw new Error(`extension ${EXTENSION_ID} not found`);
  const file = path.join(ext.extensionPath, 'test', 'fixtures', rel);
  if (!fs.existsSync(file)) throw new Error(`fixture ${rel} is missing`);
  return file;
}

/** A copy of an ONNX doctor fixture in a fresh folder of the workspace. */
function copyFixture(rel: string, name: string, label: string): vscode.Uri {
  const dest = path.join(freshDir(label), name);
  fs.copyFileSync(fixture(rel), dest);
  return vscode.Uri.file(dest);
}

function codeOf(d: vscode.Diagnostic): string | undefined {
  return typeof d.code === 'object' ? String(d.code.value) : d.code === undefined ? undefined : String(d.code);
}

async function diagnosticsWith(uri: vscode.Uri, code: string, present = true): Promise<vscode.Diagnostic[]> {
  return waitFor(() => {
    const d = vscode.languages.getDiagnostics(uri);
    const has = d.some((x) => codeOf(x) === code);
    return d.length > 0 && has === present ? d : undefined;
  }, `diagnostics of ${path.basename(uri.fsPath)} ${present ? 'with' : 'without'} ${code}`);
}

async function dropoutsOnDisk(uri: vscode.Uri): Promise<number> {
  const model = await core.loadModel(uri.fsPath);
  assert.ok(model instanceof OnnxModel);
  return model.graph.node.filter((n) => n.opType === 'Dropout').length;
}

function applyFix(uri: vscode.Uri, fix: string, opts: Record<string, unknown> = { preview: false }): Thenable<FixCommandResult | undefined> {
  return vscode.commands.executeCommand<FixCommandResult | undefined>('modelSurgeon.applyFix', uri, fix, opts);
}

async function save(uri: vscode.Uri): Promise<void> {
  await openInEditor(uri);
  await vscode.commands.executeCommand('workbench.action.files.save');
  await waitDirty(uri, false);
}

describe('BatchNorm / Dropout doctor', function () {
  this.timeout(120_000);

  afterEach(async () => {
    await closeAllEditors();
  });

  it('puts the audit findings into the Problems panel with codes, severities and a reveal link', async () => {
    const uri = copyFixture('onnx-doctor/dropout_bn/model.onnx', 'dropout_bn.onnx', 'diag');
    await openInEditor(uri);
    const diags = await diagnosticsWith(uri, 'dropout-in-inference-graph');
    const byCode = new Map(diags.map((d) => [codeOf(d), d]));
    // dropout-before-bn comes only from the audit: inspect's report merges it
    assert.ok(byCode.has('dropout-before-bn'), `codes: ${[...byCode.keys()].join(', ')}`);
    assert.equal(byCode.get('dropout-before-bn')?.severity, vscode.DiagnosticSeverity.Warning);
    const d = byCode.get('dropout-in-inference-graph');
    assert.ok(d);
    assert.equal(d.severity, vscode.DiagnosticSeverity.Information);
    assert.equal(d.source, 'Model Surgeon');
    assert.match(d.message, /\/2\/Dropout/);
    assert.match(d.message, /Fix: Remove Dropout/);
    assert.ok(typeof d.code === 'object', 'the code should be a link');
    const target = d.code.target;
    assert.equal(target.scheme, 'command');
    assert.equal(target.path, 'modelSurgeon.revealFinding');

    // the link's command selects the finding's first layer in the editor
    const args = JSON.parse(decodeURIComponent(target.query)) as unknown[];
    await vscode.commands.executeCommand('modelSurgeon.revealFinding', ...args);
    const { selectedLayer } = await api();
    await waitFor(() => selectedLayer(uri) === '/2/Dropout', 'the editor to select /2/Dropout after the Problems-panel link');
  });

  it('removes Dropout with { preview: false }, saves, and undo restores it', async () => {
    const uri = copyFixture('onnx-doctor/dropout_bn/model.onnx', 'dropout_bn.onnx', 'remove');
    const original = fs.readFileSync(uri.fsPath);
    assert.equal(await dropoutsOnDisk(uri), 1);
    await openInEditor(uri);
    await diagnosticsWith(uri, 'dropout-in-inference-graph');

    const result = await applyFix(uri, 'remove-dropout');
    assert.ok(result, 'modelSurgeon.applyFix returned undefined (see the Model Surgeon log)');
    assert.equal(result.applied, 1);
    assert.equal(result.label, 'Remove Dropout (1)');
    assert.equal(result.preserves_outputs, true);
    assert.ok(result.max_abs_error !== null && result.max_abs_error <= 1e-6, `max_abs_error ${result.max_abs_error}`);
    await waitDirty(uri, true);
    await diagnosticsWith(uri, 'dropout-in-inference-graph', false);
    assert.equal(await dropoutsOnDisk(uri), 1, 'the fix must not write the file before it is saved');

    await save(uri);
    assert.equal(await dropoutsOnDisk(uri), 0, 'the saved file still has a Dropout node');
    const check = await core.verify(await core.loadModel(fixture('onnx-doctor/dropout_bn/model.onnx')), await core.loadModel(uri.fsPath));
    assert.ok(check.max_abs_error <= 1e-6, `saved model differs: ${check.max_abs_error}`);

    await vscode.commands.executeCommand('undo');
    await waitDirty(uri, true);
    await diagnosticsWith(uri, 'dropout-in-inference-graph');
    await save(uri);
    assert.equal(await dropoutsOnDisk(uri), 1, 'undo + save should bring the Dropout back');
    assert.deepEqual(fs.readFileSync(uri.fsPath), original, 'undo + save should restore the exact bytes');
  });

  it('a fix that changes the outputs on purpose reports the measured deviation (batchnorm-eval-mode)', async () => {
    const uri = copyFixture('onnx-doctor/bn_training/model.onnx', 'bn_training.onnx', 'evalmode');
    await openInEditor(uri);
    await diagnosticsWith(uri, 'bn-training-mode');
    const result = await applyFix(uri, 'batchnorm-eval-mode');
    assert.ok(result, 'modelSurgeon.applyFix returned undefined (see the Model Surgeon log)');
    assert.equal(result.applied, 1);
    assert.equal(result.preserves_outputs, false);
    assert.ok(result.max_abs_error !== null && result.max_abs_error > 1e-3, `expected a real deviation, got ${result.max_abs_error}`);
    await waitDirty(uri, true);
    await diagnosticsWith(uri, 'bn-training-mode', false);
  });

  it('unknown fixes and fixes of other formats: one clear error, nothing changes', async () => {
    const uri = copyFixture('onnx-doctor/dropout_bn/model.onnx', 'dropout_bn.onnx', 'unknown');
    const tab = await openInEditor(uri);
    assert.equal(await applyFix(uri, 'make-it-better'), undefined);
    await waitForLog("does not know the fix 'make-it-better'");
    assert.equal(await applyFix(uri, 'replace-batchnorm-groupnorm'), undefined);
    await waitForLog('is not available for onnx models');
    assert.equal(tab.isDirty, false);
  });
});

describe('BatchNorm / Dropout doctor on Keras', function () {
  this.timeout(120_000);

  afterEach(async () => {
    await closeAllEditors();
  });

  it('removes the Dropout layers of a .keras model (verified with TF.js), saves, and the file has none', async () => {
    const uri = copyFixture('keras/doctor_seq.keras', 'doctor_seq.keras', 'keras-dropout');
    await openInEditor(uri);
    await diagnosticsWith(uri, 'dropout-in-inference-graph');
    const result = await applyFix(uri, 'remove-dropout');
    assert.ok(result, 'modelSurgeon.applyFix returned undefined (see the Model Surgeon log)');
    assert.equal(result.applied, 3);
    assert.equal(result.label, 'Remove Dropout (3)');
    assert.ok(result.max_abs_error !== null && result.max_abs_error <= 1e-5, `max_abs_error ${result.max_abs_error}`);
    assert.match(result.engine ?? '', /^tfjs-/);
    await save(uri);
    assert.equal(core.audit(await core.loadModel(uri.fsPath)).dropout.rows.length, 0, 'the saved .keras file still has Dropout layers');
  });

  it('replace-batchnorm-groupnorm changes the function: applied with its deviation (or why it is not measured)', async () => {
    const uri = copyFixture('keras/doctor_seq.keras', 'doctor_seq.keras', 'keras-groupnorm');
    await openInEditor(uri);
    const result = await applyFix(uri, 'replace-batchnorm-groupnorm');
    assert.ok(result, 'modelSurgeon.applyFix returned undefined (see the Model Surgeon log)');
    assert.ok(result.applied > 0);
    assert.equal(result.preserves_outputs, false);
    assert.ok(result.unverifiable !== null || (result.max_abs_error ?? 0) > 0, 'either a measured deviation or the reason it is not measured');
    await waitDirty(uri, true);
  });
});
