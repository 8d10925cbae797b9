// Bundles the extension host, the CLI, the webview apps (editor, activations panel) and the extension-host test suite with esbuild.
// Usage: node scripts/build.mjs [--watch] [--production]
import * as esbuild from 'esbuild';
import { existsSync, mkdirSync, cpSync } from 'node:fs';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

// loaded at run time from node_modules (shipped as production dependencies): native / wasm / ESM-only packages
// and TensorFlow.js (its wasm backend finds its .wasm files next to its own package)
const runtimeExternals = ['onnxruntime-node', '@tensorflow/*', 'h5wasm'];

const common = {
  bundle: true,
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
  legalComments: 'none',
};

/** @type {esbuild.BuildOptions[]} */
const builds = [
  {
    ...common,
    entryPoints: { extension: 'src/extension/extension.ts' },
    outdir: 'dist',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode', ...runtimeExternals],
  },
  {
    ...common,
    entryPoints: { cli: 'src/cli/main.ts' },
    outdir: 'dist',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: runtimeExternals,
  },
  {
    ...common,
    entryPoints: { webview: 'webview/main.ts', heatmap: 'webview-heatmap/main.ts' },
    outdir: 'dist',
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    loader: { '.css': 'text' },
  },
];
if (existsSync('test/exthost/index.ts')) {
  builds.push({
    ...common,
    entryPoints: { 'test/exthost/index': 'test/exthost/index.ts' },
    outdir: 'dist',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode', ...runtimeExternals, 'mocha'],
  });
}

const present = builds.filter((b) => Object.values(b.entryPoints).every((p) => existsSync(p)));
mkdirSync('dist', { recursive: true });
if (existsSync('node_modules/@vscode/codicons/dist')) {
  cpSync('node_modules/@vscode/codicons/dist/codicon.css', 'dist/codicon.css');
  cpSync('node_modules/@vscode/codicons/dist/codicon.ttf', 'dist/codicon.ttf');
}
if (watch) {
  for (const b of present) (await esbuild.context(b)).watch();
} else {
  await Promise.all(present.map((b) => esbuild.build(b)));
}
