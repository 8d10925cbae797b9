// `npm start`: build, package and install the extension into a private code-server (VS Code 1.139 in the
// browser), open a demo workspace with the sample models, print the URL and serve until Ctrl+C.
//   npm start                     http://127.0.0.1:8080/?folder=...
//   MODEL_SURGEON_PORT=9000 npm start
//   npm start -- --reset          recreate the demo workspace from samples/ (undoes saved demo edits)
// Everything lives in .e2e/ (git-ignored): node24/, cs/ (code-server), exts-demo/, demo-udd/, demo-workspace/.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as h from '../test/e2e/harness';
import { nsfwModel } from '../test/helpers/nsfwjs';

const REAL_WORLD_SAMPLE = path.join(h.REPO, 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

function step<T>(label: string, fn: () => T): T {
  const t = Date.now();
  const result = fn();
  console.log(`[start] ${label.padEnd(40)} ${h.elapsed(t)}`);
  return result;
}

/** Copies files from `src` that `dest` lacks (a demo workspace keeps the user's edits unless --reset). */
function copyMissing(src: string, dest: string): void {
  fs.mkdirSync(dest, { recursive: true });
  if (!fs.existsSync(src)) return;
  for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, entry.name);
    const d = path.join(dest, entry.name);
    if (entry.isDirectory()) copyMissing(s, d);
    else if (!fs.existsSync(d)) fs.copyFileSync(s, d);
  }
}

async function main(): Promise<void> {
  const reset = process.argv.includes('--reset');
  h.claimRunDir('demo'); // one `npm start` at a time (they share .e2e/demo-*)
  // --extension DIR: serve another extension folder instead (for trying this script; no build, no ORT check).
  const extArg = process.argv.indexOf('--extension');
  const extensionRoot = extArg >= 0 ? path.resolve(process.argv[extArg + 1] ?? '') : h.REPO;
  const port = Number(process.env.MODEL_SURGEON_PORT ?? 8080);
  const host = process.env.MODEL_SURGEON_HOST ?? '127.0.0.1';
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`MODEL_SURGEON_PORT=${process.env.MODEL_SURGEON_PORT} is not a port`);

  h.ensureSetup();
  if (extensionRoot === h.REPO) {
    step('npm run build', () => {
      const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: h.REPO, stdio: 'inherit', timeout: 10 * 60_000 });
      if (r.status !== 0) throw new Error(`npm run build failed (exit ${r.status ?? r.signal})`);
    });
  }
  const vsix = step('package VSIX', () =>
    h.packageVsix({ extensionRoot, out: path.join(h.E2E_DIR, 'demo.vsix'), mustContain: extensionRoot === h.REPO ? h.MODEL_SURGEON_VSIX_MUST_CONTAIN : [] }),
  );
  const extensionsDir = path.join(h.E2E_DIR, 'exts-demo');
  step('install VSIX into .e2e/exts-demo', () => h.installVsix(vsix, extensionsDir));

  const workspace = path.join(h.E2E_DIR, 'demo-workspace');
  step(`demo workspace${reset ? ' (reset)' : ''}`, () => {
    if (reset) fs.rmSync(workspace, { recursive: true, force: true });
    copyMissing(path.join(h.REPO, 'samples'), workspace);
    const realWorld = path.join(workspace, path.basename(REAL_WORLD_SAMPLE));
    if (fs.existsSync(REAL_WORLD_SAMPLE) && !fs.existsSync(realWorld)) fs.copyFileSync(REAL_WORLD_SAMPLE, realWorld);
    // a real TF.js layers model (nsfwjs mobilenet_v2: 52 BatchNorm, uint8-quantized weights), model.json + shards
    const tfjsDir = path.join(workspace, 'nsfw_mobilenet_v2');
    if (!fs.existsSync(path.join(tfjsDir, 'model.json'))) copyMissing(path.dirname(nsfwModel('mobilenet_v2')), tfjsDir);
  });

  const server = await h.startCodeServer({
    extensionsDir,
    userDataDir: path.join(h.E2E_DIR, 'demo-udd'),
    workspace,
    host,
    port,
    logFile: path.join(h.LOG_DIR, 'demo-code-server.log'),
  });
  const url = h.workbenchUrl(server.url, workspace);
  console.log('');
  console.log('  Model Surgeon is running in VS Code (code-server 4.139.1) at:');
  console.log(`    ${url}`);
  console.log('');
  console.log(`  Open a model (.onnx, .h5, .keras; model.json via right-click > Open in Model Surgeon) from the Explorer. Server log: ${path.relative(h.REPO, server.logFile)}`);
  console.log(`  Ctrl+C stops the server. \`npm start -- --reset\` restores the demo models.`);

  // Ctrl+C / SIGTERM: the harness stops the server (whole process group) and exits.
  const code = await server.exited;
  if (server.stopping) return;
  console.error(`[start] code-server exited unexpectedly (code ${code}); see ${server.logFile}`);
  await server.stop();
  process.exit(1);
}

main().catch((err: unknown) => {
  console.error(`[start] ERROR: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
