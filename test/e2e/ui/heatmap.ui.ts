// Probe Activations (dead neurons) panel: open a temp copy of the pruning fixture (dead units by construction),
// run the command, the APoZ heatmap renders; Prune dead units -> preview -> Apply -> Ctrl+S in the model's
// editor -> the file on disk has fewer parameters and matches the original within 1e-5.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '../../../src/core/api';
import { explorerItem, pollUntil, REPO, runCommand, webviewFrame, type UiContext } from '../harness';

const MODEL = 'prune_cnn.onnx';
const FIXTURE = path.join(REPO, 'test', 'fixtures', 'onnx-prune', 'cnn', 'model.onnx');

export async function run(ctx: UiContext): Promise<void> {
  const { page } = ctx;
  const file = path.join(ctx.workspace, MODEL);
  fs.copyFileSync(FIXTURE, file);
  const original = await core.loadModel(file);
  const paramsBefore = core.inspect(original).totals.params;

  await ctx.openWorkspace();
  await explorerItem(page, MODEL).dblclick({ timeout: 15_000 });
  await webviewFrame(page).locator('[data-testid="layer-table"]').waitFor({ state: 'visible', timeout: 60_000 });

  await runCommand(page, 'Model Surgeon: Probe Activations (Dead Neurons)');
  // two webviews are visible now (the editor and the panel beside it): find the panel's frame
  const panelIndex = await pollUntil(
    async () => {
      for (let i = 0; i < 2; i++) {
        if ((await webviewFrame(page, i).locator('[data-testid="heatmap"]').count()) > 0) return i;
      }
      return undefined;
    },
    60_000,
    'the Activations panel with its heatmap canvas',
  );
  const panel = webviewFrame(page, panelIndex);
  const editor = webviewFrame(page, 1 - panelIndex);
  const heatmap = panel.locator('[data-testid="heatmap"]');
  await heatmap.waitFor({ state: 'visible', timeout: 30_000 });
  await panel.locator('[data-testid="heatmap-layer-bar"]').waitFor({ state: 'visible', timeout: 10_000 });
  await panel.locator('[data-testid="depth-chart"]').waitFor({ state: 'visible', timeout: 10_000 });
  const box = await heatmap.boundingBox();
  assert.ok(box && box.width > 100 && box.height >= 9 * 16 - 1, `heatmap canvas too small: ${JSON.stringify(box)}`);
  // the canvas really has pixels: more than the background colour
  const colours = await heatmap.evaluate((c) => {
    // (no DOM lib in this tsconfig: the canvas API used, structurally)
    type Canvas2d = { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null };
    const canvas = c as unknown as Canvas2d;
    const d = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data;
    const seen = new Set<number>();
    if (d) for (let i = 0; i < d.length; i += 4 * 7) seen.add(((d[i] ?? 0) << 16) | ((d[i + 1] ?? 0) << 8) | (d[i + 2] ?? 0));
    return seen.size;
  });
  assert.ok(colours > 5, `the heatmap shows only ${colours} colour(s)`);
  const summary = await panel.locator('[data-testid="probe-summary"]').innerText();
  assert.match(summary, /9 activation layers, [1-9]\d* dead or constant unit/, summary);
  // hover shows the statistics of a unit
  await heatmap.hover({ position: { x: 5, y: 5 } });
  const tip = await pollUntil(async () => {
    const t = panel.locator('[data-testid="heatmap-tooltip"]');
    return (await t.isVisible()) ? t.innerText() : undefined;
  }, 10_000, 'the heatmap tooltip');
  assert.match(tip, /APoZ .*\n.*mean .*\n.*max/s, tip);
  await ctx.screenshot('heatmap');

  // zoom (the canvas grows and scrolls) and channel order
  await panel.locator('[data-testid="zoom-in"]').click({ timeout: 10_000 });
  await pollUntil(async () => ((await heatmap.boundingBox())?.width ?? 0) > (box?.width ?? 0) * 1.5 ? true : undefined, 10_000, 'the heatmap to grow after zoom in');
  await panel.locator('[data-testid="heatmap-sort"]').selectOption('channel');
  await ctx.screenshot('zoom-channel-order');
  await panel.locator('[data-testid="zoom-out"]').click({ timeout: 10_000 });
  await panel.locator('[data-testid="heatmap-sort"]').selectOption('apoz');
  await pollUntil(async () => (Math.abs(((await heatmap.boundingBox())?.width ?? 0) - (box?.width ?? 0)) < 2 ? true : undefined), 10_000, 'the heatmap back at 100%');

  // a click selects the unit and reveals its layer (row 3 = /Relu_3) in the Model Surgeon editor
  await heatmap.click({ position: { x: 5, y: 3 * 16 + 8 } });
  await pollUntil(async () => ((await panel.locator('[data-testid="heatmap-selected"]').innerText()).includes('/Relu_3 channel') ? true : undefined), 10_000, 'the selected unit line');
  const row = editor.locator('[data-testid="layer-row"][data-layer="/Relu_3"]');
  await pollUntil(async () => ((await row.getAttribute('aria-selected')) === 'true' ? true : undefined), 15_000, 'row /Relu_3 selected in the editor');

  await panel.locator('[data-testid="prune-dead-button"]').click({ timeout: 15_000 });
  const preview = panel.locator('[data-testid="prune-preview"]');
  await preview.waitFor({ state: 'visible', timeout: 60_000 });
  const verifyText = await panel.locator('[data-testid="prune-verify"]').innerText();
  const abs = Number(/max abs error ([^,]+),/.exec(verifyText)?.[1]);
  assert.ok(abs < 1e-5, `prune verification: ${verifyText}`);
  await ctx.screenshot('prune-preview');
  await panel.locator('[data-testid="prune-apply-button"]').click({ timeout: 15_000 });
  await pollUntil(async () => {
    const t = panel.locator('[data-testid="status"]');
    return (await t.count()) > 0 && /Applied Prune dead units \(\d+\)/.test(await t.innerText()) ? true : undefined;
  }, 30_000, 'the "Applied Prune dead units (N)" banner');

  // save from the model's editor (the panel is not a document)
  await page.getByRole('tab', { name: new RegExp(`^${MODEL.replace('.', '\\.')}`) }).click({ timeout: 15_000 });
  await page.keyboard.press('Control+S');
  const saved = await pollUntil(async () => {
    try {
      const m = await core.loadModel(file);
      return core.inspect(m).totals.params < paramsBefore ? m : undefined;
    } catch {
      return undefined; // mid-write
    }
  }, 30_000, `${MODEL} on disk to have fewer than ${paramsBefore} parameters`);
  const v = await core.verify(original, saved);
  assert.ok(v.max_abs_error < 1e-5, `pruned file vs original: max abs error ${v.max_abs_error}`);
  ctx.log(`params ${paramsBefore} -> ${core.inspect(saved).totals.params}, max abs error ${v.max_abs_error}`);
  await ctx.screenshot('saved');

  // Swap activation… -> pick gelu -> preview with the deviation and the warning -> Apply (an undoable edit)
  await panel.locator('[data-testid="swap-button"]').click({ timeout: 15_000 });
  const pick = page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: 'gelu' }).first();
  await pick.waitFor({ state: 'visible', timeout: 15_000 });
  await pick.click({ timeout: 15_000 });
  const swap = panel.locator('[data-testid="swap-preview"]');
  await swap.waitFor({ state: 'visible', timeout: 60_000 });
  const swapText = await swap.innerText();
  assert.match(swapText, /changes the function of a trained model/, swapText);
  assert.match(swapText, /Swapped 9 activation/, swapText);
  await panel.locator('[data-testid="swap-depth-chart"]').scrollIntoViewIfNeeded();
  await ctx.screenshot('swap-preview');
  await panel.locator('[data-testid="swap-apply-button"]').click({ timeout: 15_000 });
  await pollUntil(async () => {
    const t = panel.locator('[data-testid="status"]');
    return (await t.count()) > 0 && (await t.innerText()).includes('Applied Swap activations to gelu (9)') ? true : undefined;
  }, 30_000, 'the "Applied Swap activations to gelu (9)" banner');
  await pollUntil(async () => ((await page.getByRole('tab', { name: new RegExp(`^${MODEL.replace('.', '\\.')}`) }).getAttribute('class'))?.includes('dirty') ? true : undefined), 15_000, 'the editor tab to be dirty after the swap');
}
