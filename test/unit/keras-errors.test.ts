/**
 * Bad input for every TF.js / Keras container: one clear ModelError line, no crash, nothing written (CLI).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { zipSync } from 'fflate';
import { after, before, describe, it } from 'node:test';
import { loadModel, ModelError } from '../../src/core/api';
import { nsfwModel } from '../helpers/nsfwjs';

const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'bin', 'model-surgeon.js');
const KERAS = path.join(ROOT, 'test', 'fixtures', 'keras');
const MOBILENET = nsfwModel('mobilenet_v2');

let tmp = '';
before(() => (tmp = mkdtempSync(path.join(os.tmpdir(), 'ms-bad-'))));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** a copy of the mobilenet model folder with model.json edited / shards changed */
function tfjsCase(dir: string, edit: (json: { weightsManifest: { paths: string[] }[] }) => void, shard?: (b: Buffer) => Buffer): string {
  mkdirSync(dir, { recursive: true });
  const json = JSON.parse(readFileSync(MOBILENET, 'utf8')) as { weightsManifest: { paths: string[] }[] };
  const src = path.dirname(MOBILENET);
  for (const p of json.weightsManifest[0].paths) {
    const b = readFileSync(path.join(src, p));
    writeFileSync(path.join(dir, p), shard ? shard(b) : b);
  }
  edit(json);
  writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
  return path.join(dir, 'model.json');
}

/** a zip whose central directory declares a huge entry (a bomb's signature) without holding it */
function bombZip(file: string): string {
  const z = Buffer.from(zipSync({ 'config.json': new Uint8Array(Buffer.from('{}')), 'model.weights.h5': new Uint8Array(1000) }, { level: 9 }));
  // patch the central directory's uncompressed size of model.weights.h5 to 3 GB
  const cd = z.lastIndexOf(Buffer.from('model.weights.h5')) - 46;
  assert.equal(z.readUInt32LE(cd), 0x02014b50);
  z.writeUInt32LE(3_000_000_000, cd + 24);
  writeFileSync(file, z);
  return file;
}

const cases: [string, (d: string) => string, RegExp][] = [
  ['broken JSON', (d) => (writeFileSync(path.join(d, 'model.json'), '{"modelTopology": {"class_name": '), path.join(d, 'model.json')), /invalid JSON/],
  ['missing shard', (d) => tfjsCase(d, (j) => (j.weightsManifest[0].paths = ['nope.bin'])), /shard 'nope\.bin' is missing/],
  ['shard of the wrong size', (d) => tfjsCase(d, () => undefined, (b) => b.subarray(0, b.length - 10)), /wrong size|hold \d+ bytes/],
  ['shard path outside the folder', (d) => tfjsCase(d, (j) => (j.weightsManifest[0].paths = ['../../etc/passwd'])), /outside the model's folder/],
  ['HDF5 garbage', (d) => (writeFileSync(path.join(d, 'm.h5'), Buffer.concat([Buffer.from('\x89HDF\r\n\x1a\n', 'latin1'), Buffer.alloc(2000, 0x5a)])), path.join(d, 'm.h5')), /not a readable HDF5 file/],
  ['HDF5 without a Keras config', (d) => (copyFileSync(path.join(KERAS, 'seq_conv.keras'), path.join(d, 'x.zip')), (writeFileSync(path.join(d, 'w.h5'), Buffer.from(unzipOne(path.join(d, 'x.zip'), 'model.weights.h5')))), path.join(d, 'w.h5')), /without a Keras model_config/],
  ['zip that is not a Keras archive', (d) => (writeFileSync(path.join(d, 'a.keras'), zipSync({ 'readme.txt': new Uint8Array(Buffer.from('hello')) })), path.join(d, 'a.keras')), /not a Keras model/],
  ['zip bomb / oversized entry', (d) => bombZip(path.join(d, 'bomb.keras')), /refused/],
  ['truncated zip', (d) => (writeFileSync(path.join(d, 't.keras'), readFileSync(path.join(KERAS, 'seq_conv.keras')).subarray(0, 3000)), path.join(d, 't.keras')), /zip/],
];

function unzipOne(file: string, name: string): Uint8Array {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { unzipSync } = require('fflate') as typeof import('fflate');
  return unzipSync(readFileSync(file))[name];
}

describe('bad TF.js / Keras input', () => {
  for (const [what, make, msg] of cases) {
    it(`${what}: one ModelError line (API and CLI), nothing written`, async () => {
      const dir = mkdtempSync(path.join(tmp, 'case-'));
      const file = make(dir);
      await assert.rejects(loadModel(file), (e: unknown) => e instanceof ModelError && msg.test(e.message) && !e.message.includes('\n'));
      const out = path.join(dir, 'out', 'model.json');
      mkdirSync(path.dirname(out));
      for (const args of [['inspect', file], ['fold-bn', file, '-o', out]]) {
        const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
        assert.equal(r.status, 1, `${args[0]}: ${r.stdout} ${r.stderr}`);
        assert.equal(r.stdout, '');
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, `one line: ${r.stderr}`);
        assert.match(lines[0], /^model-surgeon: error: /);
        assert.match(lines[0], msg);
      }
      assert.deepEqual(readdirSync(path.dirname(out)), [], 'nothing written');
      assert.ok(!existsSync(out));
    });
  }
});
