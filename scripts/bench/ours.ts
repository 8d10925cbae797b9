/**
 * One timed operation of ours, in a fresh process (like the Python peer), printing one JSON line.
 *   node --import tsx scripts/bench/ours.ts inspect MODEL   -> load + full per-layer statistics
 *   node --import tsx scripts/bench/ours.ts fold MODEL [BACKEND] -> load, fold all BN (timed alone), then verify
 *                                                               (timed alone; TF.js formats: BACKEND node|wasm|cpu)
 */
import { foldBatchNorm, inspectAsync, loadModel, verify } from '../../src/core/api';

async function main(): Promise<void> {
  const [op, file, backend] = process.argv.slice(2);
  const t0 = performance.now();
  const model = await loadModel(file);
  const t1 = performance.now();
  if (op === 'inspect') {
    const r = await inspectAsync(model);
    const t2 = performance.now();
    let tensors = 0;
    for (const l of r.layers) tensors += l.weights.length;
    console.log(JSON.stringify({ seconds: (t2 - t0) / 1000, load_seconds: (t1 - t0) / 1000, stats_seconds: (t2 - t1) / 1000, tensors, params: r.totals.params }));
  } else if (op === 'fold') {
    const f = foldBatchNorm(model);
    const t2 = performance.now();
    const opts = backend ? { samples: 1, backend: backend as 'wasm' | 'cpu' | 'node' } : { samples: 1 };
    const v = await verify(model, f.model, opts);
    const t3 = performance.now();
    console.log(JSON.stringify({ fold_seconds: (t2 - t1) / 1000, verify_seconds: (t3 - t2) / 1000, load_seconds: (t1 - t0) / 1000, folded: f.plan.candidates.length, skipped: f.plan.skipped.length, max_rel_error: v.max_rel_error, engine: v.engine }));
  } else throw new Error(`unknown op ${op}`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
