// Runs the extension-host test suite (mocha, real `vscode` API) inside code-server's extension host.
//   node --import tsx test/e2e/run-exthost.ts [--extension DIR] [--tests FILE]
// Defaults: --extension = repo root, --tests = dist/test/exthost/index.js (built by `npm run build`).
// code-server runs with the smoke-test driver, the page opens a payload URL with extensionDevelopmentPath and
// extensionTestsPath; VS Code reports the result through window.codeAutomationExit. Exit code = the tests'.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as util from 'node:util';
import type { Browser } from 'playwright-core';
import { nsfwModel } from '../helpers/nsfwjs';
import * as h from './harness';

const OVERALL_TIMEOUT_MS = 5 * 60_000;
/** Printed by test/exthost/index.ts when mocha starts. */
const TESTS_START_MARKER = '[model-surgeon] extension-host tests starting';
/** Workbench messages that are expected offline (see E2E.md) and say nothing about the tests. */
const NOISE = /ENOTFOUND open-vsx\.org|^Canceled|vsda|github.*auth/i;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  const t0 = Date.now();
  // Hard bound on everything (setup, server, browser, tests); the harness' exit hook kills the server group.
  setTimeout(() => {
    console.error(`[exthost] ERROR: overall timeout of ${OVERALL_TIMEOUT_MS / 60_000} min exceeded`);
    process.exit(1);
  }, OVERALL_TIMEOUT_MS + 30_000).unref();
  const extensionRoot = path.resolve(arg('--extension') ?? h.REPO);
  const testsPath = path.resolve(extensionRoot, arg('--tests') ?? 'dist/test/exthost/index.js');
  if (!fs.existsSync(path.join(extensionRoot, 'package.json'))) throw new Error(`${extensionRoot} has no package.json`);
  if (!fs.existsSync(testsPath)) throw new Error(`${testsPath} is missing — run \`npm run build\` first`);

  const runDir = h.claimRunDir('exthost');
  h.ensureSetup();
  const workspace = path.join(runDir, 'workspace');
  h.copyDir(path.join(h.REPO, 'samples'), workspace);
  // test/exthost/formats.test.ts copies nsfwjs' real TF.js models (layers: mobilenet_v2, graph:
  // mobilenet_v2_mid) from .cache/nsfwjs/
  nsfwModel('mobilenet_v2');
  nsfwModel('mobilenet_v2_mid');
  const userDataDir = path.join(runDir, 'udd');

  const server = await h.startCodeServer({
    extensionsDir: path.join(runDir, 'exts'), // empty: only the extension under development is loaded
    userDataDir,
    workspace,
    smokeDriver: true,
    logFile: path.join(h.LOG_DIR, 'exthost-code-server.log'),
  });
  console.log(`[exthost] code-server on ${server.url} (${h.elapsed(t0)})`);
  let browser: Browser | undefined;
  try {
    browser = await h.launchBrowser();
    const page = await h.newPage(browser, path.join(h.LOG_DIR, 'exthost-browser-console.log'));
    const remote = (p: string) => `vscode-remote://127.0.0.1:${server.port}${p}`;

    let resolveExit: (code: number) => void = () => undefined;
    const exitCode = new Promise<number>((resolve) => (resolveExit = resolve));
    await page.exposeFunction('codeAutomationExit', (code: number) => {
      resolveExit(typeof code === 'number' ? code : 1);
    });
    // Everything the workbench logs (renderer + extension host) goes to the console log file; stdout gets the
    // extension host's output from the test entry's start marker on, minus known offline noise.
    const consoleLog = fs.createWriteStream(path.join(h.LOG_DIR, 'exthost-console.log'));
    let testsStarted = false;
    await page.exposeFunction('codeAutomationLog', (type: string, args: unknown) => {
      const text = util.format(...(Array.isArray(args) ? args : [args]));
      consoleLog.write(`[${type}] ${text}\n`);
      if (text.includes(TESTS_START_MARKER)) testsStarted = true;
      else if (testsStarted && !NOISE.test(text)) (type === 'error' ? process.stderr : process.stdout).write(`${text}\n`);
    });
    page.on('crash', () => resolveExit(1));

    const payload: Array<[string, string]> = [
      ['extensionDevelopmentPath', remote(extensionRoot)],
      ['extensionTestsPath', remote(testsPath)],
    ];
    await page.goto(h.workbenchUrl(server.url, workspace, payload), { timeout: 60_000 });
    console.log(`[exthost] workbench loading, tests start when the extension host is up (${h.elapsed(t0)})`);

    const remaining = OVERALL_TIMEOUT_MS - (Date.now() - t0);
    const code = await h.withTimeout(exitCode, remaining, `extension-host tests did not report an exit code (logs: ${h.LOG_DIR}, ${userDataDir}/logs)`);
    if (!testsStarted) console.error(`[exthost] the test entry never started; see ${h.LOG_DIR}/exthost-console.log and ${userDataDir}/logs`);
    console.log(`[exthost] exit code ${code} (${h.elapsed(t0)})`);
    consoleLog.end();
    return code;
  } finally {
    await browser?.close().catch(() => undefined);
    await server.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[exthost] ERROR: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
