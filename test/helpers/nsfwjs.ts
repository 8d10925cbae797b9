/**
 * nsfwjs@4.4.0 (MIT, devDependency) ships real TF.js models as JS modules that hold model.json as an object
 * and each weight shard as a base64 string (`dist/models/<name>/*.min.js`). This helper decodes them back into
 * the files the TF.js converter wrote (model.json + shards) in .cache/nsfwjs/<name>/ (once; reused after).
 */
import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const MODELS = path.join(ROOT, 'node_modules', 'nsfwjs', 'dist', 'models');

export type NsfwModel = 'mobilenet_v2' | 'mobilenet_v2_mid' | 'inception_v3';

/** path of the decoded model.json */
export function nsfwModel(name: NsfwModel): string {
  const src = path.join(MODELS, name);
  if (!existsSync(src)) throw new Error(`nsfwjs models not found in ${src}: run npm ci (nsfwjs is a devDependency)`);
  const dir = path.join(ROOT, '.cache', 'nsfwjs', name);
  const json = path.join(dir, 'model.json');
  if (existsSync(json)) return json;
  mkdirSync(dir, { recursive: true });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const model = require(path.join(src, 'model.min.js')) as { weightsManifest: { paths: string[] }[] };
  for (const f of readdirSync(src)) {
    if (f === 'model.min.js' || !f.endsWith('.min.js')) continue;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const b64 = require(path.join(src, f)) as string;
    writeFileSync(path.join(dir, f.replace(/\.min\.js$/, '')), Buffer.from(b64, 'base64'));
  }
  for (const g of model.weightsManifest) for (const p of g.paths) if (!existsSync(path.join(dir, p))) throw new Error(`nsfwjs ${name}: shard ${p} missing`);
  // model.json last (a helper run that died half-way is redone)
  writeFileSync(json + '.tmp', JSON.stringify(model));
  renameSync(json + '.tmp', json);
  return json;
}
