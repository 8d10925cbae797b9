// Fold BatchNorm through the webview, save with Ctrl+S, check the file on disk, then undo + save restores it.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { explorerItem, pollUntil, webviewFrame, type UiContext } from '../harness';

const MODEL = 'fcn_tiny.onnx';
const BN = Buffer.from('BatchNormalization', 'ascii');

/** Whether the file holds a BatchNormalization node; retried because the extension may be mid-write. */
async function fileHasBatchNorm(file: string, expected: boolean, timeoutMs: number): Promise<void> {
  await pollUntil(
    () => {
      try {
        const bytes = fs.readFileSync(file);
        return bytes.length > 0 && bytes.includes(BN) === expected ? true : undefined;
      } catch {
        return undefined;
      }
    },
    timeoutMs,
    `${path.basename(file)} on disk ${expected ? 'to contain' : 'to no longer contain'} "BatchNormalization"`,
  );
}

export async function run(ctx: UiContext): Promise<void> {
  const { page } = ctx;
  const file = path.join(ctx.workspace, MODEL);
  assert.ok(fs.readFileSync(file).includes(BN), `${MODEL} in samples/ has no BatchNormalization to fold`);

  await ctx.openWorkspace();
  // Double-click: the custom editor is the default editor for *.onnx.
  await explorerItem(page, MODEL).dblclick({ timeout: 15_000 });
  const web = webviewFrame(page);
  await web.locator('[data-testid="layer-table"]').waitFor({ state: 'visible', timeout: 60_000 });

  await web.locator('[data-testid="fold-button"]').click({ timeout: 15_000 });
  await web.locator('[data-testid="fold-preview"]').waitFor({ state: 'visible', timeout: 60_000 });
  await ctx.screenshot('fold-preview');
  await web.locator('[data-testid="apply-button"]').click({ timeout: 15_000 });

  // Focus is inside the webview; VS Code forwards its keybindings to the workbench.
  await page.keyboard.press('Control+S');
  await fileHasBatchNorm(file, false, 30_000);
  await ctx.screenshot('saved');

  await page.keyboard.press('Control+Z');
  await page.keyboard.press('Control+S');
  await fileHasBatchNorm(file, true, 30_000);
  await ctx.screenshot('undone');
}
