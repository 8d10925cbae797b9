// Keras and TF.js models in the packaged extension: the Model Explorer lists a .keras file and a TF.js
// model.json (not a model.json that is other JSON); a .keras opens in Model Surgeon on double-click (the
// default editor), shows its format, Freeze BatchNorm (explained, applied), Fold BatchNorm, Ctrl+S, and reopens
// from disk with the BatchNorms gone and the remaining ones frozen; a TF.js model.json opens through the
// Explorer's "Open in Model Surgeon" (it is JSON, so Model Surgeon is only an option for it), folds with the
// quantized -> float32 note, saves its shards and reopens; a model.json that is not a TF.js model shows the
// one-line error view.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { unzipSync } from 'fflate';
import { nsfwModel } from '../../helpers/nsfwjs';
import { explorerContextMenu, explorerItem, pollUntil, REPO, webviewFrame, type UiContext } from '../harness';

const KERAS = 'func_mixed.keras';
const TFJS_DIR = 'mobilenet_v2';
const OTHER_DIR = 'not_a_model';

interface KerasLayer {
  class_name: string;
  config: { name?: string; trainable?: boolean };
}

/** every {class_name, config} of a Keras config tree */
function kerasLayers(x: unknown, out: KerasLayer[] = []): KerasLayer[] {
  if (Array.isArray(x)) for (const v of x) kerasLayers(v, out);
  else if (typeof x === 'object' && x !== null) {
    const o = x as Record<string, unknown>;
    if (typeof o.class_name === 'string' && typeof o.config === 'object' && o.config !== null) out.push(o as unknown as KerasLayer);
    for (const v of Object.values(o)) kerasLayers(v, out);
  }
  return out;
}

/** BatchNormalization layers in a .keras file's config.json; undefined while the file is being written */
function kerasBatchNorms(file: string): KerasLayer[] | undefined {
  try {
    const config = unzipSync(fs.readFileSync(file))['config.json'];
    return config ? kerasLayers(JSON.parse(new TextDecoder().decode(config))).filter((l) => l.class_name === 'BatchNormalization') : undefined;
  } catch {
    return undefined;
  }
}

function tfjsBatchNorms(modelJson: string): number | undefined {
  try {
    const json = JSON.parse(fs.readFileSync(modelJson, 'utf8')) as { modelTopology: unknown };
    return kerasLayers(json.modelTopology).filter((l) => l.class_name === 'BatchNormalization').length;
  } catch {
    return undefined;
  }
}

export async function run(ctx: UiContext): Promise<void> {
  const { page } = ctx;
  const kerasFile = path.join(ctx.workspace, KERAS);
  fs.copyFileSync(path.join(REPO, 'test', 'fixtures', 'keras', KERAS), kerasFile);
  const tfjsSrc = path.dirname(nsfwModel('mobilenet_v2'));
  fs.mkdirSync(path.join(ctx.workspace, TFJS_DIR));
  for (const f of fs.readdirSync(tfjsSrc)) fs.copyFileSync(path.join(tfjsSrc, f), path.join(ctx.workspace, TFJS_DIR, f));
  const modelJson = path.join(ctx.workspace, TFJS_DIR, 'model.json');
  fs.mkdirSync(path.join(ctx.workspace, OTHER_DIR));
  fs.writeFileSync(path.join(ctx.workspace, OTHER_DIR, 'model.json'), JSON.stringify({ name: 'settings', version: 2 }, null, 2));
  assert.equal(kerasBatchNorms(kerasFile)?.length, 6);
  await ctx.openWorkspace();

  // --- Model Explorer: every format; a model.json only when it is a TF.js model
  await page.getByRole('tab', { name: /^Model Surgeon/ }).click({ timeout: 15_000 });
  const view = page.locator('.pane', { has: page.locator('.pane-header', { hasText: 'Model Explorer' }) });
  const rows = view.getByRole('treeitem');
  for (const name of [KERAS, 'model.json', 'fcn_tiny.onnx']) await rows.filter({ hasText: name }).first().waitFor({ state: 'visible', timeout: 30_000 });
  assert.equal(await rows.filter({ hasText: 'model.json' }).count(), 1, 'only the TF.js model.json should be listed');
  assert.match(await rows.filter({ hasText: 'model.json' }).innerText(), new RegExp(TFJS_DIR));
  await ctx.screenshot('model-explorer');
  await page.keyboard.press('Control+Shift+E');

  // --- .keras: the default editor on double-click
  await explorerItem(page, KERAS).dblclick({ timeout: 15_000 });
  const web = webviewFrame(page);
  const layerRows = web.locator('[data-testid="layer-row"]');
  const status = web.locator('[data-testid="status"]');
  const textUntil = async (loc: ReturnType<typeof web.locator>, ok: (t: string) => boolean, what: string, timeoutMs = 60_000): Promise<string> =>
    pollUntil(async () => {
      const t = (await loc.count()) ? await loc.innerText() : '';
      return ok(t) ? t : undefined;
    }, timeoutMs, what);
  await web.locator('[data-testid="layer-table"]').waitFor({ state: 'visible', timeout: 60_000 });
  await textUntil(web.locator('[data-testid="format"]'), (t) => t === 'Keras 3 (.keras)', 'the summary to show the format');
  const layersBefore = await layerRows.count();

  // Freeze BatchNorm: the preview explains what freezing does and when folding is better
  const freezeButton = web.locator('[data-testid="freeze-button"]');
  await textUntil(freezeButton, (t) => t.includes('Freeze BatchNorm (6)'), 'the Freeze BatchNorm (6) button');
  await freezeButton.click({ timeout: 15_000 });
  const freezePreview = web.locator('[data-testid="freeze-preview"]');
  await freezePreview.waitFor({ state: 'visible', timeout: 30_000 });
  const explain = await freezePreview.innerText();
  for (const phrase of ['trainable: false', 'inference mode', 'moving mean and variance', 'batch size 1', 'Fold BatchNorm is better']) {
    assert.ok(explain.includes(phrase), `the freeze preview should explain "${phrase}":\n${explain}`);
  }
  await ctx.screenshot('keras-freeze-preview');
  await web.locator('[data-testid="freeze-apply-button"]').click({ timeout: 15_000 });
  await textUntil(status, (t) => t.includes('Applied Freeze BatchNorm (6)'), 'the "Applied Freeze BatchNorm (6)" banner');
  await textUntil(freezeButton, (t) => t.trim() === 'Freeze BatchNorm', 'the freeze button without a count once all are frozen');

  // Fold BatchNorm: verified with TensorFlow.js; the summary then names the backend
  await web.locator('[data-testid="fold-button"]').click({ timeout: 15_000 });
  await web.locator('[data-testid="fold-preview"]').waitFor({ state: 'visible', timeout: 60_000 });
  const apply = web.locator('[data-testid="apply-button"]');
  await pollUntil(async () => ((await apply.getAttribute('aria-disabled')) === null ? true : undefined), 90_000, 'verification to finish (Apply enabled)');
  const verify = await web.locator('[data-testid="fold-verify"]').innerText();
  assert.match(verify, /engine tfjs-(node|wasm|cpu)/, `verification text: ${verify}`);
  await textUntil(web.locator('[data-testid="engine"]'), (t) => /^tfjs-(node|wasm|cpu)$/.test(t.trim()), 'the summary to name the TF.js backend');
  await ctx.screenshot('keras-fold-preview');
  await apply.click({ timeout: 15_000 });
  await textUntil(status, (t) => t.includes('Applied Fold BatchNorm (4)'), 'the "Applied Fold BatchNorm (4)" banner');
  await pollUntil(async () => ((await layerRows.count()) === layersBefore - 4 ? true : undefined), 30_000, `${layersBefore - 4} layers after folding`);

  await page.keyboard.press('Control+S');
  const saved = await pollUntil(() => {
    const bns = kerasBatchNorms(kerasFile);
    return bns && bns.length === 2 ? bns : undefined;
  }, 30_000, `${KERAS} on disk to keep only the 2 unfoldable BatchNorms`);
  for (const bn of saved) assert.equal(bn.config.trainable, false, `${bn.config.name} should be saved frozen`);
  await ctx.screenshot('keras-saved');

  // reopen from disk
  await page.keyboard.press('Control+W');
  await web.locator('[data-testid="layer-table"]').waitFor({ state: 'detached', timeout: 15_000 });
  await explorerItem(page, KERAS).dblclick({ timeout: 15_000 });
  await web.locator('[data-testid="layer-table"]').waitFor({ state: 'visible', timeout: 60_000 });
  await pollUntil(async () => ((await layerRows.count()) === layersBefore - 4 ? true : undefined), 30_000, 'the reopened file to have the folded layers');
  await textUntil(freezeButton, (t) => t.trim() === 'Freeze BatchNorm', 'nothing left to freeze after reopening');
  assert.equal(await freezeButton.getAttribute('aria-disabled'), 'true');
  await ctx.screenshot('keras-reopened');
  await page.keyboard.press('Control+W');
  await web.locator('[data-testid="layer-table"]').waitFor({ state: 'detached', timeout: 15_000 });

  // --- TF.js model.json: "Open in Model Surgeon" from the Explorer's context menu
  await explorerItem(page, TFJS_DIR).click({ timeout: 15_000 });
  await explorerContextMenu(page, 'model.json', 'Open in Model Surgeon');
  await web.locator('[data-testid="layer-table"]').waitFor({ state: 'visible', timeout: 60_000 });
  await textUntil(web.locator('[data-testid="format"]'), (t) => t === 'TF.js layers model', 'the summary to show the TF.js format');
  const tfjsBefore = await layerRows.count();
  assert.equal(tfjsBatchNorms(modelJson), 52);
  await web.locator('[data-testid="fold-button"]').click({ timeout: 15_000 });
  await web.locator('[data-testid="fold-preview"]').waitFor({ state: 'visible', timeout: 60_000 });
  const notes = await textUntil(web.locator('[data-testid="fold-notes"]'), (t) => t.includes('float32'), 'the note that quantized weights are written as float32');
  assert.match(notes, /\+[\d,]+ bytes|\+\d/, `the note should give the size change: ${notes}`);
  await pollUntil(async () => ((await apply.getAttribute('aria-disabled')) === null ? true : undefined), 90_000, 'verification of mobilenet_v2 (Apply enabled)');
  await ctx.screenshot('tfjs-fold-preview');
  await apply.click({ timeout: 15_000 });
  await textUntil(status, (t) => t.includes('Applied Fold BatchNorm (52)'), 'the "Applied Fold BatchNorm (52)" banner');
  await page.keyboard.press('Control+S');
  await pollUntil(() => (tfjsBatchNorms(modelJson) === 0 ? true : undefined), 30_000, 'model.json on disk without BatchNormalization');
  const manifest = (JSON.parse(fs.readFileSync(modelJson, 'utf8')) as { weightsManifest: Array<{ paths: string[] }> }).weightsManifest;
  for (const p of manifest.flatMap((g) => g.paths)) assert.ok(fs.existsSync(path.join(ctx.workspace, TFJS_DIR, p)), `shard ${p} is missing`);
  await ctx.screenshot('tfjs-saved');

  await page.keyboard.press('Control+W');
  await web.locator('[data-testid="layer-table"]').waitFor({ state: 'detached', timeout: 15_000 });
  await explorerContextMenu(page, 'model.json', 'Open in Model Surgeon');
  await web.locator('[data-testid="layer-table"]').waitFor({ state: 'visible', timeout: 60_000 });
  await pollUntil(async () => ((await layerRows.count()) === tfjsBefore - 52 ? true : undefined), 30_000, `${tfjsBefore - 52} layers in the reopened model.json`);
  await textUntil(web.locator('[data-testid="fold-button"]'), (t) => t.includes('(0 foldable)'), 'nothing left to fold');
  await ctx.screenshot('tfjs-reopened');
  await page.keyboard.press('Control+W');
  await web.locator('[data-testid="layer-table"]').waitFor({ state: 'detached', timeout: 15_000 });

  // --- a model.json that is other JSON: the readable error view
  await explorerItem(page, TFJS_DIR).click({ timeout: 15_000 }); // collapse: one model.json row at a time
  await explorerItem(page, OTHER_DIR).click({ timeout: 15_000 });
  await explorerContextMenu(page, 'model.json', 'Open in Model Surgeon');
  const errorView = web.locator('[data-testid="error-view"]');
  await errorView.waitFor({ state: 'visible', timeout: 60_000 });
  const message = (await errorView.locator('.error-text').innerText()).trim();
  assert.match(message, /^model\.json: JSON that is not a TF\.js model\.json/);
  await ctx.screenshot('not-tfjs-error');
}
