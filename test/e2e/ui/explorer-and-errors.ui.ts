// The Model Surgeon activity-bar view: it lists the workspace's models, expanding one shows its layers, and
// clicking a layer opens the editor with that row selected. A broken .onnx opens into the one-line error view.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { explorerItem, pollUntil, webviewFrame, type UiContext } from '../harness';

const MODEL = 'fcn_tiny.onnx';
const LAYER = '/enc2/enc2.1/BatchNormalization';
const BROKEN = 'broken.onnx';

export async function run(ctx: UiContext): Promise<void> {
  const { page } = ctx;
  fs.writeFileSync(path.join(ctx.workspace, BROKEN), 'this is not a model');
  await ctx.openWorkspace();

  // the activity-bar entry opens the "Model Explorer" view
  await page.getByRole('tab', { name: /^Model Surgeon/ }).click({ timeout: 15_000 });
  const view = page.locator('.pane', { has: page.locator('.pane-header', { hasText: 'Model Explorer' }) });
  const rows = view.getByRole('treeitem');
  for (const name of ['convtranspose_bn.onnx', MODEL, 'linear_bn1d.onnx', 'unfoldable.onnx', BROKEN]) {
    await rows.filter({ hasText: name }).first().waitFor({ state: 'visible', timeout: 30_000 });
  }
  const fileRow = rows.filter({ hasText: MODEL });
  assert.equal(await fileRow.getAttribute('aria-expanded'), 'false');

  // expand: the file is inspected and its 21 layers appear
  await fileRow.click();
  await pollUntil(async () => ((await fileRow.getAttribute('aria-expanded')) === 'true' ? true : undefined), 15_000, `${MODEL} to expand`);
  const layerRow = rows.filter({ hasText: LAYER });
  await layerRow.waitFor({ state: 'visible', timeout: 30_000 });
  await rows.filter({ hasText: '/enc1/enc1.0/Conv' }).waitFor({ state: 'visible' });
  await rows.filter({ hasText: '/Resize' }).waitFor({ state: 'visible' });
  await ctx.screenshot('explorer-expanded');

  // clicking a layer opens the editor with that layer's row selected
  await layerRow.click();
  const web = webviewFrame(page);
  const selected = web.locator(`[data-testid="layer-row"][data-layer="${LAYER}"]`);
  await selected.waitFor({ state: 'visible', timeout: 60_000 });
  await pollUntil(async () => ((await selected.getAttribute('aria-selected')) === 'true' ? true : undefined), 15_000, `row ${LAYER} to be selected`);
  assert.equal(await web.locator('[data-testid="layer-row"][aria-selected="true"]').count(), 1, 'exactly one row should be selected');
  await ctx.screenshot('layer-revealed');

  // a broken file: the error view with one clear line, no stack trace
  await page.keyboard.press('Control+Shift+E');
  await explorerItem(page, BROKEN).dblclick({ timeout: 15_000 });
  await page.getByRole('tab', { name: new RegExp(`^${BROKEN.replace('.', '\\.')}`) }).waitFor({ state: 'visible', timeout: 15_000 });
  const errorView = webviewFrame(page).locator('[data-testid="error-view"]');
  await errorView.waitFor({ state: 'visible', timeout: 60_000 });
  const message = (await errorView.locator('.error-text').innerText()).trim();
  assert.match(message, /^broken\.onnx: not an ONNX model/);
  assert.ok(!message.includes('\n'), `the error should be one line, got:\n${message}`);
  assert.doesNotMatch(await errorView.innerText(), /\n\s*at .+:\d+:\d+|Error: /, 'the error view shows a stack trace');
  assert.equal(await webviewFrame(page).locator('[data-testid="layer-table"]').count(), 0);
  await ctx.screenshot('broken');
}
