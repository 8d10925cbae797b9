// Runs inside the real extension host (see test/exthost/index.ts); `vscode` is the real API.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';

const EXTENSION_ID = 'model-surgeon.model-surgeon';

describe('smoke', () => {
  it(`extension ${EXTENSION_ID} is installed and activates`, async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, `extension ${EXTENSION_ID} not found`);
    await ext.activate();
    assert.equal(ext.isActive, true);
  });

  it('registers the command modelSurgeon.openInModelSurgeon', async () => {
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes('modelSurgeon.openInModelSurgeon'), 'modelSurgeon.openInModelSurgeon is not registered');
  });
});
