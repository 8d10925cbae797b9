// Probe Activations (dead neurons): the command exists, and the scripted form
// executeCommand('modelSurgeon.probeActivations', uri, { samples, show: false }) returns the probe's summary.
// test/fixtures/onnx-prune/cnn/model.onnx has dead units by construction.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ProbeCommandResult } from '../../src/extension/heatmapPanel';
import { closeAllEditors, EXTENSION_ID, freshDir, openInEditor, sample, waitFor, waitForLog } from './helpers';

const COMMAND = 'modelSurgeon.probeActivations';

function pruneFixtureCopy(): vscode.Uri {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} not found`);
  const src = path.join(ext.extensionPath, 'test', 'fixtures', 'onnx-prune', 'cnn', 'model.onnx');
  assert.ok(fs.existsSync(src), `fixture missing: ${src}`);
  const dest = path.join(freshDir('probe'), 'prune_cnn.onnx');
  fs.copyFileSync(src, dest);
  return vscode.Uri.file(dest);
}

function probe(uri: vscode.Uri, opts: Record<string, unknown>): Thenable<ProbeCommandResult | undefined> {
  return vscode.commands.executeCommand<ProbeCommandResult | undefined>(COMMAND, uri, opts);
}

describe('Probe Activations', function () {
  this.timeout(120_000);

  afterEach(async () => {
    await closeAllEditors();
  });

  it(`registers ${COMMAND}`, async () => {
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes(COMMAND), `${COMMAND} is not registered`);
  });

  it('reports the dead units of prune_cnn.onnx (scripted, no panel)', async () => {
    const uri = pruneFixtureCopy();
    const r = await probe(uri, { samples: 16, show: false });
    assert.ok(r, 'the command returned no summary');
    assert.equal(r.file, 'prune_cnn.onnx');
    assert.equal(r.samples, 16);
    assert.equal(r.layers, 9, 'nine ReLU layers');
    assert.ok(r.dead_units > 0, `expected dead units, got ${JSON.stringify(r.per_layer)}`);
    assert.equal(r.dead_units, r.per_layer.reduce((n, l) => n + l.dead + l.constant, 0));
    assert.ok(r.per_layer.every((l) => l.op === 'Relu' && l.channels > 0));
    assert.equal(r.engine, 'onnxruntime-node');
  });

  it('probes the open document (its in-memory model) the same way', async () => {
    const uri = pruneFixtureCopy();
    await openInEditor(uri);
    const r = await probe(uri, { samples: 16, show: false });
    assert.ok(r && r.dead_units > 0);
  });

  it('opens the panel for an ONNX model', async () => {
    const uri = pruneFixtureCopy();
    await probe(uri, { samples: 8 });
    const tabs = (): vscode.Tab[] => vscode.window.tabGroups.all.flatMap((g) => g.tabs);
    await waitFor(() => tabs().find((t) => t.label === 'Activations: prune_cnn.onnx'), `an Activations panel (tabs: ${tabs().map((t) => t.label).join(', ')})`);
    await waitForLog('Probed prune_cnn.onnx: 9 activation layers');
  });

  it('probes a Keras model too', async () => {
    const keras = fs.readdirSync(path.dirname(sample('fcn_tiny.onnx'))).find((f) => /\.keras$/i.test(f));
    assert.ok(keras, 'a .keras sample in the workspace');
    const r = await probe(vscode.Uri.file(sample(keras)), { samples: 8, show: false });
    assert.ok(r, 'a probe summary');
  });
});
