// Open a model from the Explorer's context menu and see the layer table in the custom editor's webview.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { explorerContextMenu, webviewFrame, type UiContext } from '../harness';

export const MODEL = 'fcn_tiny.onnx';

export async function run(ctx: UiContext): Promise<void> {
  assert.ok(fs.existsSync(path.join(ctx.workspace, MODEL)), `${MODEL} is not in the test workspace (samples/)`);
  await ctx.openWorkspace();
  await explorerContextMenu(ctx.page, MODEL, 'Open in Model Surgeon');
  const table = webviewFrame(ctx.page).locator('[data-testid="layer-table"]');
  await table.waitFor({ state: 'visible', timeout: 60_000 });
  await ctx.screenshot('layer-table');
}
