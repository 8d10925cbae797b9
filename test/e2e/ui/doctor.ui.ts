// The BatchNorm / Dropout doctor in the real UI: a model with an inference Dropout shows the finding in the
// Problems panel (whose code link selects the layer in the editor) and in the webview's findings list; its fix
// button opens the verified preview; Apply + Ctrl+S writes a file without Dropout (checked with the core, not
// by searching bytes). Then the BatchNorm panel (per-channel charts) and the memory planner on fcn_tiny.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '../../../src/core/api';
import { OnnxModel } from '../../../src/core/formats/onnx/model';
import { explorerItem, pollUntil, REPO, runCommand, webviewFrame, type UiContext } from '../harness';

const MODEL = 'doctor_dropout_bn.onnx';
const FIXTURE = path.join(REPO, 'test', 'fixtures', 'onnx-doctor', 'dropout_bn', 'model.onnx');
const CODE = 'dropout-in-inference-graph';
const DROPOUT = '/2/Dropout';
const TRAINING_MODEL = 'doctor_bn_training.onnx';
const TRAINING_FIXTURE = path.join(REPO, 'test', 'fixtures', 'onnx-doctor', 'bn_training', 'model.onnx');

/** Dropout nodes of the model on disk, read with the core (undefined while the file is being written). */
async function dropoutNodes(file: string): Promise<number | undefined> {
  try {
    const model = await core.loadModel(file);
    if (!(model instanceof OnnxModel)) throw new Error(`${file} is not an ONNX model`);
    return model.graph.node.filter((n) => n.opType === 'Dropout').length;
  } catch {
    return undefined;
  }
}

export async function run(ctx: UiContext): Promise<void> {
  const { page } = ctx;
  const file = path.join(ctx.workspace, MODEL);
  fs.copyFileSync(FIXTURE, file);
  fs.copyFileSync(TRAINING_FIXTURE, path.join(ctx.workspace, TRAINING_MODEL));
  assert.equal(await dropoutNodes(file), 1, `${MODEL} should have one Dropout node`);

  await ctx.openWorkspace();
  await explorerItem(page, MODEL).dblclick({ timeout: 15_000 });
  const web = webviewFrame(page);
  const finding = web.locator(`[data-testid="finding"][data-code="${CODE}"]`);
  await finding.waitFor({ state: 'visible', timeout: 60_000 });
  assert.match(await finding.innerText(), /identity|does nothing/i, 'the finding should explain itself');
  assert.ok((await web.locator('[data-testid="finding"][data-code="dropout-before-bn"]').count()) === 1, 'the audit finding dropout-before-bn is listed');

  // Problems panel: the finding is there; its code link selects the Dropout layer in the editor
  await runCommand(page, 'View: Toggle Problems');
  const problem = page.locator('.markers-panel .monaco-list-row', { hasText: CODE }).first();
  await problem.waitFor({ state: 'visible', timeout: 30_000 });
  await ctx.screenshot('problems-panel');
  await problem.locator('a.monaco-link', { hasText: CODE }).click({ timeout: 15_000 });
  await web.locator(`[data-testid="layer-row"][data-layer="${DROPOUT}"][aria-selected="true"]`).waitFor({ state: 'visible', timeout: 30_000 });
  await pollUntil(async () => ((await finding.getAttribute('class'))?.includes('highlight') ? true : undefined), 10_000, 'the finding to be highlighted after the Problems-panel link');
  await ctx.screenshot('revealed-from-problems');

  // fix button -> preview with the verification -> Apply
  await finding.locator('[data-testid="fix-button"]').click({ timeout: 15_000 });
  const preview = web.locator('[data-testid="fix-preview"]');
  await preview.waitFor({ state: 'visible', timeout: 30_000 });
  const verify = web.locator('[data-testid="fix-verify"]');
  const verifyText = await pollUntil(async () => {
    const t = await verify.innerText();
    return /max abs error/.test(t) ? t : undefined;
  }, 60_000, 'the fix verification (max abs error)');
  assert.match(verifyText, /Within tolerance/, `verification: ${verifyText}`);
  assert.match(await preview.innerText(), new RegExp(DROPOUT.replace(/\//g, '\\/')), 'the preview lists the Dropout it removes');
  await ctx.screenshot('fix-preview');
  const apply = web.locator('[data-testid="fix-apply-button"]');
  await pollUntil(async () => ((await apply.getAttribute('aria-disabled')) === null ? true : undefined), 30_000, 'Apply to be enabled');
  await apply.click({ timeout: 15_000 });
  const status = web.locator('[data-testid="status"]');
  await pollUntil(async () => ((await status.innerText()).includes('Applied Remove Dropout (1)') ? true : undefined), 30_000, 'the "Applied Remove Dropout (1)" banner');
  await pollUntil(async () => ((await finding.count()) === 0 ? true : undefined), 30_000, `the ${CODE} finding to go after the fix`);
  assert.equal(await dropoutNodes(file), 1, 'the file must not change before it is saved');

  await page.keyboard.press('Control+S');
  await pollUntil(async () => ((await dropoutNodes(file)) === 0 ? true : undefined), 30_000, `${MODEL} on disk to have no Dropout node`);
  await pollUntil(async () => ((await page.locator('.markers-panel .monaco-list-row', { hasText: CODE }).count()) === 0 ? true : undefined), 30_000, `${CODE} to leave the Problems panel`);
  await ctx.screenshot('fixed-saved');
  await runCommand(page, 'View: Hide Panel'); // room for the panels below
  await page.locator('.markers-panel').waitFor({ state: 'hidden', timeout: 15_000 });

  // BatchNorm panel on the same model: audit rows and the per-channel charts of the selected BatchNorm
  await web.locator('[data-testid="tab-batchnorm"]').click();
  const bnRows = web.locator('[data-testid="bn-row"]');
  await pollUntil(async () => ((await bnRows.count()) === 2 ? true : undefined), 30_000, 'two BatchNorm rows in the audit table');
  await web.locator('[data-testid="bn-chart-gamma"]').waitFor({ state: 'visible', timeout: 30_000 });
  await web.locator('[data-testid="bn-chart-fold-scale"]').waitFor({ state: 'visible', timeout: 30_000 });
  await web.locator('[data-testid="bn-chart-variance"]').scrollIntoViewIfNeeded();
  await ctx.screenshot('batchnorm-panel');
  await web.locator('[data-testid="tab-layers"]').click();

  // a fix that changes the outputs on purpose: the preview says so and shows the measured deviation
  await explorerItem(page, TRAINING_MODEL).dblclick({ timeout: 15_000 });
  const tr = webviewFrame(page);
  const trainingFinding = tr.locator('[data-testid="finding"][data-code="bn-training-mode"]');
  await trainingFinding.waitFor({ state: 'visible', timeout: 60_000 });
  await trainingFinding.locator('[data-testid="fix-button"]').click({ timeout: 15_000 });
  await tr.locator('[data-testid="fix-preview"]').waitFor({ state: 'visible', timeout: 30_000 });
  await tr.locator('[data-testid="fix-changes-function"]').waitFor({ state: 'visible', timeout: 5_000 });
  const deviation = await pollUntil(async () => {
    const t = await tr.locator('[data-testid="fix-verify"]').innerText();
    return /max abs error/.test(t) ? t : undefined;
  }, 60_000, 'the measured deviation of batchnorm-eval-mode');
  assert.match(deviation, /changes the function/, `deviation text: ${deviation}`);
  await ctx.screenshot('fix-preview-changes-function');
  await tr.locator('[data-testid="fix-cancel-button"]').click();
  await tr.locator('[data-testid="fix-preview"]').waitFor({ state: 'detached', timeout: 15_000 });

  // the planner on fcn_tiny: a largest batch for 12 GiB
  await explorerItem(page, 'fcn_tiny.onnx').dblclick({ timeout: 15_000 });
  const fcn = webviewFrame(page);
  await fcn.locator('[data-testid="layer-table"]').waitFor({ state: 'visible', timeout: 60_000 });
  await fcn.locator('[data-testid="tab-planner"]').click();
  await fcn.locator('[data-testid="planner"]').waitFor({ state: 'visible', timeout: 15_000 });
  const maxBatch = fcn.locator('[data-testid="planner-max-batch"]');
  await maxBatch.waitFor({ state: 'visible', timeout: 30_000 });
  const n = Number((await maxBatch.innerText()).replace(/[^\d]/g, ''));
  assert.ok(Number.isInteger(n) && n > 0, `largest batch: ${await maxBatch.innerText()}`);
  await fcn.locator('[data-testid="planner-chart-inference"]').waitFor({ state: 'visible', timeout: 15_000 });
  await fcn.locator('[data-testid="planner-crops-table"]').waitFor({ state: 'visible', timeout: 15_000 });
  // a larger input leaves room for fewer samples
  await fcn.locator('[data-testid="planner-height"]').fill('512');
  await fcn.locator('[data-testid="planner-width"]').fill('512');
  await fcn.locator('[data-testid="planner-width"]').press('Enter');
  const plannerEl = fcn.locator('[data-testid="planner"]');
  await pollUntil(
    async () => ((await plannerEl.innerText()).includes('1×3×512×512') && (await plannerEl.getAttribute('aria-busy')) === null ? true : undefined),
    30_000,
    'the plan for a 512×512 input',
  );
  const m = Number((await maxBatch.innerText()).replace(/[^\d]/g, ''));
  assert.ok(m > 0 && m < n, `a larger input should fit fewer samples: ${m} at 512×512 vs ${n} at 64×64`);
  await fcn.locator('[data-testid="planner-chart-inference"]').scrollIntoViewIfNeeded();
  await ctx.screenshot('planner');
  await fcn.locator('[data-testid="planner-crops-table"]').scrollIntoViewIfNeeded();
  await ctx.screenshot('planner-crops');
  // back to the layer table, as the next test run expects a fresh state anyway
  await fcn.locator('[data-testid="tab-layers"]').click();
}
