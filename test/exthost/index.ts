// Extension-host test entry (VS Code's extensionTestsPath). scripts/build.mjs bundles this file to
// dist/test/exthost/index.js with `vscode` and `mocha` external; test/e2e/run-exthost.ts loads it in a real
// VS Code (code-server) extension host. Add a suite: create test/exthost/<name>.test.ts and list it below.
import Mocha from 'mocha';

// Imported lazily (after mocha has put describe/it on globalThis); esbuild still bundles them statically.
const suites: Array<[string, () => Promise<unknown>]> = [
  ['smoke.test.ts', () => import('./smoke.test')],
  ['editor.test.ts', () => import('./editor.test')],
  ['formats.test.ts', () => import('./formats.test')],
  ['doctor.test.ts', () => import('./doctor.test')],
  ['heatmap.test.ts', () => import('./heatmap.test')],
];

export async function run(): Promise<void> {
  console.log('[model-surgeon] extension-host tests starting'); // test/e2e/run-exthost.ts forwards output from here on
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 60_000, reporter: 'spec' });
  for (const [file, load] of suites) {
    mocha.suite.emit('pre-require', globalThis, file, mocha);
    await load();
    mocha.suite.emit('require', undefined, file, mocha);
    mocha.suite.emit('post-require', globalThis, file, mocha);
  }
  const { passes, failures } = await new Promise<{ passes: number; failures: number }>((resolve) => {
    const runner = mocha.run(() => resolve({ passes: runner.stats?.passes ?? 0, failures: runner.stats?.failures ?? 0 }));
  });
  // CI greps this exact line.
  console.log(`${passes} passed, ${failures} failed`);
  if (failures > 0 || passes === 0) throw new Error(failures > 0 ? `${failures} extension-host test(s) failed` : 'no extension-host tests ran');
}
