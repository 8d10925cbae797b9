/** The TF.js graph model handler: inspect, statistics, verification and re-save (no rewrites). */
import type { Model } from '../../api';
import { verifyTfjs } from '../../engines/tfjs';
import type { FormatHandler } from '../handler';
import { tfjsBundle } from '../keras/handler';
import { saveEncoded } from '../keras/tfjs-layers';
import { buildTfjsGraphView, encodeTfjsGraph, planTfjsGraphFold, TfjsGraphModel, tfjsGraphRunnable, tfjsGraphSize } from './graph-model';

export const tfjsGraphHandler: FormatHandler<TfjsGraphModel> = {
  formats: ['tfjs-graph'],
  owns: (m: Model): m is TfjsGraphModel => m instanceof TfjsGraphModel,
  graphView: (m, dims) => buildTfjsGraphView(m, dims),
  planFold: (m) => planTfjsGraphFold(m),
  applyFold: (m) => ({ model: m, plan: planTfjsGraphFold(m), notes: ['TF.js graph models are not rewritten; nothing changed.'] }),
  size: (m) => tfjsGraphSize(m),
  verify: (a, b, opts) => verifyTfjs(tfjsGraphRunnable(a), tfjsGraphRunnable(b), opts),
  serialize: (m) => {
    const enc = encodeTfjsGraph(m);
    return tfjsBundle(enc.json, enc.shards);
  },
  save: (m, file) => saveEncoded(encodeTfjsGraph(m), file),
};
