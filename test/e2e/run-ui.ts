// UI end-to-end tests in a real VS Code (code-server) driven through Debian chromium.
//   node --import tsx test/e2e/run-ui.ts [test-name ...] [--skip-package] [--extension DIR] [--samples DIR]
// Packages the VSIX (with onnxruntime-node), installs it into a fresh extensions dir, starts code-server
// WITHOUT the smoke-test driver, and runs test/e2e/ui/*.ui.ts one after another, each on a fresh copy of
// samples/ in its own browser context. Screenshots: test-results/screenshots/. Logs: .e2e/logs/.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser } from 'playwright-core';
import * as h from './harness';

const TEST_TIMEOUT_MS = 3 * 60_000;
const OVERALL_TIMEOUT_MS = 15 * 60_000;

interface Args {
  names: string[];
  skipPackage: boolean;
  extensionRoot: string;
  samples: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { names: [], skipPackage: false, extensionRoot: h.REPO, samples: path.join(h.REPO, 'samples') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--skip-package') args.skipPackage = true;
    else if (a === '--extension') args.extensionRoot = path.resolve(argv[++i] ?? '');
    else if (a === '--samples') args.samples = path.resolve(argv[++i] ?? '');
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else args.names.push(a.replace(/\.ui\.ts$/, ''));
  }
  return args;
}

type UiTest = (ctx: h.UiContext) => Promise<void>;

async function loadTests(names: string[]): Promise<Array<{ name: string; run: UiTest }>> {
  const dir = path.join(__dirname, 'ui');
  const all = fs.readdirSync(dir).filter((f) => f.endsWith('.ui.ts')).sort().map((f) => f.replace(/\.ui\.ts$/, ''));
  const unknown = names.filter((n) => !all.includes(n));
  if (unknown.length) throw new Error(`no such UI test: ${unknown.join(', ')} (have: ${all.join(', ')})`);
  const tests: Array<{ name: string; run: UiTest }> = [];
  for (const name of names.length ? names : all) {
    const mod = (await import(path.join(dir, `${name}.ui.ts`))) as { run?: unknown };
    if (typeof mod.run !== 'function') throw new Error(`test/e2e/ui/${name}.ui.ts does not export async function run(ctx)`);
    tests.push({ name, run: mod.run as UiTest });
  }
  return tests;
}

async function main(): Promise<number> {
  const t0 = Date.now();
  setTimeout(() => {
    console.error(`[ui] ERROR: overall timeout of ${OVERALL_TIMEOUT_MS / 60_000} min exceeded`);
    process.exit(1);
  }, OVERALL_TIMEOUT_MS).unref();

  const args = parseArgs(process.argv.slice(2));
  const tests = await loadTests(args.names);
  const runDir = h.claimRunDir('ui');
  h.ensureSetup();

  const vsixPath = path.join(h.E2E_DIR, 'model-surgeon.vsix');
  let t = Date.now();
  if (args.skipPackage) {
    if (!fs.existsSync(vsixPath)) throw new Error(`--skip-package but ${vsixPath} does not exist`);
  } else {
    // The real extension must ship onnxruntime-node; a throwaway extension (--extension) need not.
    const mustContain = args.extensionRoot === h.REPO ? h.MODEL_SURGEON_VSIX_MUST_CONTAIN : [];
    h.packageVsix({ extensionRoot: args.extensionRoot, out: vsixPath, mustContain });
    console.log(`[ui] packaged ${path.relative(h.REPO, vsixPath)} (${(fs.statSync(vsixPath).size / 1e6).toFixed(1)} MB, ${h.elapsed(t)})`);
  }

  const extensionsDir = path.join(runDir, 'exts');
  t = Date.now();
  h.installVsix(vsixPath, extensionsDir);
  console.log(`[ui] installed into ${path.relative(h.REPO, extensionsDir)} (${h.elapsed(t)})`);
  if (!fs.existsSync(args.samples)) console.log(`[ui] warning: ${args.samples} does not exist; tests get an empty workspace`);

  const userDataDir = path.join(runDir, 'udd');
  fs.mkdirSync(path.join(runDir, 'ws-none'), { recursive: true });
  const server = await h.startCodeServer({
    extensionsDir,
    userDataDir,
    workspace: path.join(runDir, 'ws-none'),
    logFile: path.join(h.LOG_DIR, 'ui-code-server.log'),
  });
  console.log(`[ui] code-server on ${server.url} (${h.elapsed(t0)} since start)`);

  let browser: Browser | undefined;
  let passed = 0;
  let failed = 0;
  try {
    browser = await h.launchBrowser();
    for (const test of tests) {
      const tt = Date.now();
      const workspace = path.join(runDir, test.name, 'workspace');
      h.copyDir(args.samples, workspace);
      const page = await h.newPage(browser, path.join(h.LOG_DIR, `ui-${test.name}-console.log`));
      const ctx: h.UiContext = {
        name: test.name,
        page,
        server,
        workspace,
        userDataDir,
        openWorkspace: async () => {
          const since = Date.now();
          await h.openWorkbench(page, server.url, workspace);
          await h.waitForExtensionHost(userDataDir, since);
        },
        screenshot: (label) => h.screenshot(page, `${test.name}-${label}`),
        log: (message) => console.log(`[ui]   ${test.name}: ${message}`),
      };
      console.log(`[ui] ▶ ${test.name}`);
      try {
        await h.withTimeout(test.run(ctx), TEST_TIMEOUT_MS, `UI test ${test.name}`);
        passed++;
        console.log(`[ui] ✔ ${test.name} (${h.elapsed(tt)})`);
      } catch (err) {
        failed++;
        const shot = await h.screenshot(page, `${test.name}-FAILED`).catch(() => '(no screenshot)');
        const msg = h.stripAnsi(err instanceof Error ? (err.stack ?? err.message) : String(err));
        console.log(`[ui] ✖ ${test.name} (${h.elapsed(tt)})\n${msg.split('\n').slice(0, 12).map((l) => `      ${l}`).join('\n')}`);
        console.log(`      screenshot: ${path.relative(h.REPO, shot)}; browser console: .e2e/logs/ui-${test.name}-console.log; server: ${path.relative(h.REPO, server.logFile)}; extension host: ${path.relative(h.REPO, userDataDir)}/logs/`);
      } finally {
        await page.context().close().catch(() => undefined);
      }
    }
  } finally {
    await browser?.close().catch(() => undefined);
    await server.stop();
  }
  console.log(`[ui] total ${h.elapsed(t0)}`);
  // CI greps this exact line.
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[ui] ERROR: ${err instanceof Error ? err.message : String(err)}`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  },
);
