/** Runs the built CLI (bin/model-surgeon.js -> dist/cli.js) as a user does, in a child process. */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'bin', 'model-surgeon.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** fails with a clear message when the bundle was not built */
export function assertCliBuilt(): void {
  assert.ok(existsSync(path.join(ROOT, 'dist', 'cli.js')), 'build first: npm run build');
}
