/** The handler for the three Keras-topology formats (TF.js layers, Keras 2 .h5, Keras 3 .keras). */
import * as path from 'node:path';
import type { Model } from '../../api';
import { verifyTfjs } from '../../engines/tfjs';
import { writeFileAtomic } from '../../util/fs';
import { zipBytes } from '../../util/zip';
import type { FormatHandler } from '../handler';
import { applyKerasFold, freezeKerasBatchNorm, kerasSize, planKerasFold } from './fold';
import { buildKerasView } from './graph';
import { kerasH5Bytes, kerasZipBytes } from './keras-files';
import { KerasModel } from './model';
import { kerasRunnable } from './runnable';
import { encodeTfjsLayers, saveTfjsLayers } from './tfjs-layers';

export function tfjsBundle(json: object, shards: { path: string; bytes: Uint8Array }[]): Uint8Array {
  return zipBytes([{ name: 'model.json', bytes: Buffer.from(JSON.stringify(json)) }, ...shards.map((s) => ({ name: s.path, bytes: s.bytes }))]);
}

export const kerasHandler: FormatHandler<KerasModel> = {
  formats: ['tfjs-layers', 'keras-h5', 'keras'],
  owns: (m: Model): m is KerasModel => m instanceof KerasModel,
  graphView: (m, dims) => buildKerasView(m, dims),
  planFold: (m) => planKerasFold(m),
  applyFold: (m, opts) => {
    const r = applyKerasFold(m, opts);
    return { model: r.model, plan: r.plan, notes: r.notes };
  },
  freeze: (m) => freezeKerasBatchNorm(m),
  size: (m) => kerasSize(m),
  verify: (a, b, opts) => {
    const view = buildKerasView(a);
    return verifyTfjs(kerasRunnable(a, view.summary.inputs), kerasRunnable(b, view.summary.inputs), opts);
  },
  serialize: (m) => {
    if (m.format === 'keras-h5') return kerasH5Bytes(m);
    if (m.format === 'keras') return kerasZipBytes(m);
    const enc = encodeTfjsLayers(m);
    return tfjsBundle(enc.json, enc.shards);
  },
  save: async (m, file) => {
    if (m.format === 'tfjs-layers') return saveTfjsLayers(m, file);
    await writeFileAtomic(path.resolve(file), m.format === 'keras-h5' ? kerasH5Bytes(m) : kerasZipBytes(m));
  },
};
