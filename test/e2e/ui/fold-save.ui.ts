// Fold BatchNorm through the webview; the "Applied … Use Undo" banner follows undo/redo; save with Ctrl+S,
// check the file on disk and the file size the summary shows; then undo + save restores the file.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatBytes } from '../../../src/protocol/format';
import { explorerItem, pollUntil, webviewFrame, type UiContext } from '../harness';

const MODEL = 'fcn_tiny.onnx';
const BN = Buffer.from('BatchNormalization', 'ascii');
const APPLIED = 'Applied Fold BatchNorm (5)';

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
  const originalSize = fs.statSync(file).size;
  assert.ok(fs.readFileSync(file).includes(BN), `${MODEL} in samples/ has no BatchNormalization to fold`);

  await ctx.openWorkspace();
  // Double-click: the custom editor is the default editor for *.onnx.
  await explorerItem(page, MODEL).dblclick({ timeout: 15_000 });
  const web = webviewFrame(page);
  const rows = web.locator('[data-testid="layer-row"]');
  const status = web.locator('[data-testid="status"]');
  const fileSize = web.locator('[data-testid="file-size"]');
  /** waits until the locator's text satisfies `ok` (the webview re-renders when the host posts) */
  const textUntil = async (loc: typeof status, ok: (t: string) => boolean, what: string, timeoutMs = 30_000): Promise<string> =>
    pollUntil(async () => {
      const t = (await loc.count()) ? await loc.innerText() : '';
      return ok(t) ? t : undefined;
    }, timeoutMs, what);

  await web.locator('[data-testid="layer-table"]').waitFor({ state: 'visible', timeout: 60_000 });
  await textUntil(fileSize, (t) => t === formatBytes(originalSize), `File size ${formatBytes(originalSize)} before any edit`);
  assert.equal(await web.locator('[data-testid="dims-input"]').isVisible(), false, 'fcn_tiny has no symbolic dims: no Input dimensions control');

  await web.locator('[data-testid="fold-button"]').click({ timeout: 15_000 });
  await web.locator('[data-testid="fold-preview"]').waitFor({ state: 'visible', timeout: 60_000 });
  await ctx.screenshot('fold-preview');
  const apply = web.locator('[data-testid="apply-button"]');
  await pollUntil(async () => ((await apply.getAttribute('aria-disabled')) === null ? true : undefined), 60_000, 'verification to finish (Apply enabled)');
  await apply.click({ timeout: 15_000 });

  // bug 1c: the verification's progress notification ends with the verification
  await page.locator('.notification-toast', { hasText: 'Verifying Fold BatchNorm' }).waitFor({ state: 'hidden', timeout: 5_000 });
  await textUntil(status, (t) => t.includes(APPLIED), 'the "Applied Fold BatchNorm (5)" banner');
  await pollUntil(async () => ((await rows.count()) === 16 ? true : undefined), 30_000, '16 layers after folding');
  await textUntil(fileSize, (t) => t === `${formatBytes(originalSize)} on disk`, 'File size of the unchanged file while the edit is unsaved');
  await ctx.screenshot('applied');

  // bug 1a: undo takes the banner away, redo brings it back
  await page.keyboard.press('Control+Z');
  await pollUntil(async () => ((await rows.count()) === 21 ? true : undefined), 30_000, '21 layers after undo');
  await textUntil(status, (t) => !t.includes('Applied'), 'the "Applied" banner to go away after undo');
  await ctx.screenshot('undo-banner-gone');
  await page.keyboard.press('Control+Shift+Z');
  await pollUntil(async () => ((await rows.count()) === 16 ? true : undefined), 30_000, '16 layers after redo');
  await textUntil(status, (t) => t.includes(APPLIED), 'the banner again after redo');

  // Focus is inside the webview; VS Code forwards its keybindings to the workbench.
  await page.keyboard.press('Control+S');
  await fileHasBatchNorm(file, false, 30_000);
  const savedSize = fs.statSync(file).size;
  assert.ok(savedSize < originalSize, `folded file (${savedSize} B) should be smaller than the original (${originalSize} B)`);
  // bug 1b: the summary shows the size of what is on disk now
  await textUntil(fileSize, (t) => t === formatBytes(savedSize), `File size ${formatBytes(savedSize)} after save`);
  await textUntil(status, (t) => !t.includes('save to write the file'), 'the "save to write the file" banner to go after save');
  await ctx.screenshot('saved');

  await page.keyboard.press('Control+Z');
  await textUntil(fileSize, (t) => t === `${formatBytes(savedSize)} on disk`, 'File size of the folded file while undo is unsaved');
  await page.keyboard.press('Control+S');
  await fileHasBatchNorm(file, true, 30_000);
  assert.equal(fs.statSync(file).size, originalSize, 'undo + save should write the original model back');
  await textUntil(fileSize, (t) => t === formatBytes(originalSize), `File size ${formatBytes(originalSize)} after undo + save`);
  await ctx.screenshot('undone');
}
