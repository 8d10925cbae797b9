/**
 * Probe / prune bench (node --import tsx scripts/bench/probe.ts; no Python needed).
 *
 * - Probing overhead: PaddleOCR's text-direction classifier (48x192) on the same pre-generated batches, plain
 *   onnxruntime inference (graph outputs only, the session created from the model file as a user would) against
 *   probeOnnx (every activation's statistics as extra outputs, streamed), alternating, in the same process. Both
 *   include session creation; the probe also includes building and encoding its copy of the graph.
 *   Target: probe / plain <= 1.3. Also probe throughput (samples/s), and two floors in the same run: the
 *   activations only copied out of onnxruntime (no statistics) and one in-graph ReduceMax per activation.
 * - The compute-heavy FCN-ResNet50 of the main bench (.cache/bench/fcn_resnet50.onnx, when present) on the
 *   probe's default 32 samples, batch 1,
 *   and a TF.js layers model (nsfwjs mobilenet_v2) probed against its plain TF.js predict.
 * - The 16 -> 100000 -> 10 MLP (test/helpers/wide-mlp.ts, written to .cache/bench/wide_mlp.onnx): probing overhead
 *   on 1024 uniform samples (batch 64) with the same floors; pruning it: applyPrune 'dead' on 256 uniform samples
 *   (probe of the hidden layer included), and its verification on 256 fresh samples.
 * Medians of RUNS runs (BENCH_RUNS, default 5). Results: .cache/bench/probe.json.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/core/api';
import { ACTIVATION_OPS, compareOnInputs, feedInputs, probeOnnx, runtimeBytesWithOutputs, toOrtFeeds } from '../../src/core/analysis/probe';
import { DEFAULT_RANDOM_SAMPLES, openProbeInputs, type ProbeBatch, type ProbeInputs } from '../../src/core/analysis/probe-inputs';
import { loadOrt } from '../../src/core/engines/onnxruntime';
import { emptyGraph, encodeModel } from '../../src/core/formats/onnx/codec';
import { buildGraphView } from '../../src/core/formats/onnx/graph';
import type { OnnxModel } from '../../src/core/formats/onnx/model';
import type { AttributeProto, NodeProto } from '../../src/core/formats/onnx/proto';
import { applyPrune } from '../../src/core/formats/onnx/prune';
import { buildWideMlp } from '../../test/helpers/wide-mlp';
import { nsfwModel } from '../../test/helpers/nsfwjs';
import { loadTfjs } from '../../src/core/engines/tfjs';
import type { KerasModel } from '../../src/core/formats/keras/model';
import { kerasInputs, loadKerasLayersModel, probeKeras, runBatch } from '../../src/core/formats/keras/probe';

const ROOT = path.join(__dirname, '..', '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const PADDLE = path.join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const DIMS = { 'p2o.DynamicDimension.0': 16, 'p2o.DynamicDimension.1': 48, 'p2o.DynamicDimension.2': 192 };
const SAMPLES = Number(process.env.BENCH_PROBE_SAMPLES ?? 512);
const BATCH = 16;
/** FCN-ResNet50: the probe's default sample count, one at a time (the FCN question's batch of 1) */
const FCN_SAMPLES = DEFAULT_RANDOM_SAMPLES;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** the same batches every time (generation is not what is measured) */
function pregenerated(inner: ProbeInputs): ProbeInputs {
  const batches: ProbeBatch[] = [...inner.batches()];
  return { ...inner, batches: () => batches };
}

/** plain inference as a user runs it: onnxruntime opens the model file itself */
async function plain(file: string, inputs: ProbeInputs): Promise<number> {
  const ort = loadOrt();
  const t0 = performance.now();
  const s = await ort.InferenceSession.create(file, { graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  for (const b of inputs.batches()) await s.run(toOrtFeeds(ort, b.feeds));
  const seconds = (performance.now() - t0) / 1000;
  await s.release();
  return seconds;
}

/** the probed activations of the default probe (every activation layer) */
function activationOutputs(model: OnnxModel, dims: Record<string, number>): { name: string; rank: number }[] {
  return buildGraphView(model, dims)
    .layers.filter((l) => ACTIVATION_OPS.has(l.op) && l.outputs[0])
    .map((l) => ({ name: l.outputs[0], rank: l.outputShape?.length ?? 0 }));
}

/**
 * Floors of any probe: (a) the activations only copied out of onnxruntime as extra outputs, results dropped;
 * (b) inside the graph, one ReduceMax per activation (all axes but 1) as the only extra output: the least
 * in-graph statistics can cost (a real probe needs min, sums and a positive count on top).
 */
async function floors(model: OnnxModel, inputs: ProbeInputs, dims: Record<string, number>): Promise<{ copy_out_s: number; one_reduce_s: number }> {
  const ort = loadOrt();
  const acts = activationOutputs(model, dims);
  const time = async (bytes: Uint8Array) => {
    const t0 = performance.now();
    const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', logSeverityLevel: 3 });
    for (const b of inputs.batches()) await s.run(toOrtFeeds(ort, b.feeds));
    const seconds = (performance.now() - t0) / 1000;
    await s.release();
    return seconds;
  };
  const copyOut = await time(runtimeBytesWithOutputs(model, acts.map((a) => a.name)));
  const attr = (name: string, ints: number[] | null, i: number | null): AttributeProto => ({ name, type: ints ? 7 : 2, ints: (ints ?? []).map(BigInt), ...(i === null ? {} : { i: BigInt(i) }), floats: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] });
  const nodes: NodeProto[] = acts
    .filter((a) => a.rank >= 2)
    .map((a, k) => ({ opType: 'ReduceMax', name: `__floor_${k}`, input: [a.name], output: [`__floor_${k}`], attribute: [attr('axes', [...Array(a.rank).keys()].filter((x) => x !== 1), null), attr('keepdims', null, 0)], metadataProps: [] }));
  const reduced = model.runtimeBytes({ ...emptyGraph(), node: nodes, output: nodes.map((n) => ({ name: n.output[0], metadataProps: [] })) });
  return { copy_out_s: copyOut, one_reduce_s: await time(reduced) };
}

interface Overhead {
  samples: number;
  batch: number;
  layers: number;
  plain_s: number;
  probe_s: number;
  overhead: number;
  probe_samples_per_s: number;
  floor: { copy_out_only: number; one_reduce_max_in_graph: number };
}

/** plain inference, probe and both floors of one ONNX model file, alternating, after one warm-up of each */
async function onnxOverhead(file: string, inputs: ProbeInputs, dims: Record<string, number>, runs: number): Promise<Overhead> {
  const model = (await loadModel(file)) as OnnxModel;
  await plain(file, inputs);
  await probeOnnx(model, inputs, { dims });
  const [plains, probes, copies, reduces]: number[][] = [[], [], [], []];
  let layers = 0;
  for (let i = 0; i < runs; i++) {
    plains.push(await plain(file, inputs));
    const r = await probeOnnx(model, inputs, { dims });
    probes.push(r.seconds);
    layers = r.layers.length;
    const f = await floors(model, inputs, dims);
    copies.push(f.copy_out_s);
    reduces.push(f.one_reduce_s);
  }
  const [pl, pr] = [median(plains), median(probes)];
  const floor = { copy_out_only: median(copies) / pl, one_reduce_max_in_graph: median(reduces) / pl };
  return { samples: inputs.samples, batch: inputs.batchSize, layers, plain_s: pl, probe_s: pr, overhead: pr / pl, probe_samples_per_s: inputs.samples / pr, floor };
}

function printOverhead(what: string, o: Overhead): void {
  console.log(`probe    ${what}, ${o.samples} samples (batch ${o.batch}), ${o.layers} activation layers: plain inference ${o.plain_s.toFixed(3)} s, probe ${o.probe_s.toFixed(3)} s -> ${o.overhead.toFixed(2)}x (target <= 1.3), ${o.probe_samples_per_s.toFixed(0)} samples/s`);
  console.log(`         floors: activations copied out, no statistics ${o.floor.copy_out_only.toFixed(2)}x; one in-graph ReduceMax per activation ${o.floor.one_reduce_max_in_graph.toFixed(2)}x`);
}

async function main(): Promise<void> {
  const out: Record<string, unknown> = {};
  // ---------------------------------------------------------------- probing overhead, ONNX
  const paddle = (await loadModel(PADDLE)) as OnnxModel;
  const inputs = pregenerated(openProbeInputs({ kind: 'random', seed: 1 }, feedInputs(paddle, DIMS), { samples: SAMPLES, batchSize: BATCH, dims: DIMS }));
  out.paddleocr_probe = { ...(await onnxOverhead(PADDLE, inputs, DIMS, RUNS)), target_overhead: 1.3 };
  printOverhead('PaddleOCR cls 48x192', out.paddleocr_probe as Overhead);

  // a compute-heavy model (generated by npm run bench's Python step; skipped when absent)
  const fcnFile = path.join(ROOT, '.cache', 'bench', 'fcn_resnet50.onnx');
  if (existsSync(fcnFile)) {
    const fcn = (await loadModel(fcnFile)) as OnnxModel;
    const fcnInputs = pregenerated(openProbeInputs({ kind: 'random', seed: 1 }, feedInputs(fcn, {}), { samples: FCN_SAMPLES, batchSize: 1 }));
    out.fcn_resnet50_probe = await onnxOverhead(fcnFile, fcnInputs, {}, Math.min(RUNS, 3));
    printOverhead('FCN-ResNet50 224x224', out.fcn_resnet50_probe as Overhead);
  }

  // the wide MLP of the question, written to a file as a user would have it
  {
    const file = path.join(ROOT, '.cache', 'bench', 'wide_mlp.onnx');
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, encodeModel(buildWideMlp().model.proto));
    const src = { kind: 'random' as const, distribution: 'uniform' as const, low: -1, high: 1, seed: 5 };
    const mInputs = pregenerated(openProbeInputs(src, feedInputs((await loadModel(file)) as OnnxModel), { samples: 1024, batchSize: 64 }));
    out.mlp_probe = await onnxOverhead(file, mInputs, {}, RUNS);
    printOverhead('MLP 16-100000-10', out.mlp_probe as Overhead);
  }

  // ---------------------------------------------------------------- TF.js layers: nsfwjs mobilenet_v2
  {
    const mobilenet = (await loadModel(nsfwModel('mobilenet_v2'))) as KerasModel;
    const kin = kerasInputs(mobilenet, { kind: 'random', seed: 1 }, { samples: 64, batchSize: 16 });
    const kInputs = pregenerated(kin.inputs);
    const { tf, engine } = await loadTfjs();
    const plainKeras = async () => {
      const t0 = performance.now();
      const lm = await loadKerasLayersModel(tf, mobilenet, kin.summaries, 'bench');
      try {
        for (const b of kInputs.batches()) await runBatch(tf, lm, b.feeds);
      } finally {
        lm.dispose();
      }
      return (performance.now() - t0) / 1000;
    };
    await plainKeras(); // warm-up, both ways
    await probeKeras(mobilenet, kInputs);
    const kp: number[] = [];
    const kq: number[] = [];
    let kl = 0;
    for (let i = 0; i < Math.min(RUNS, 3); i++) {
      kp.push(await plainKeras());
      const r = await probeKeras(mobilenet, kInputs);
      kq.push(r.seconds);
      kl = r.layers.length;
    }
    out.mobilenet_v2_probe = { engine, samples: 64, batch: 16, layers: kl, plain_s: median(kp), probe_s: median(kq), overhead: median(kq) / median(kp) };
    console.log(`probe    nsfwjs mobilenet_v2 (TF.js layers, ${engine}), 64 samples (batch 16), ${kl} activation layers: plain predict ${median(kp).toFixed(2)} s, probe ${median(kq).toFixed(2)} s -> ${(median(kq) / median(kp)).toFixed(2)}x`);
  }

  // ---------------------------------------------------------------- pruning the wide MLP
  const builds: number[] = [];
  const prunes: number[] = [];
  const probeParts: number[] = [];
  const verifies: number[] = [];
  let summary: Record<string, unknown> = {};
  for (let i = 0; i < Math.min(RUNS, 3); i++) {
    const t0 = performance.now();
    const { model } = buildWideMlp();
    builds.push((performance.now() - t0) / 1000);
    const src = { kind: 'random' as const, distribution: 'uniform' as const, low: -1, high: 1, seed: 5 };
    const r = await applyPrune(model, { criterion: 'dead', inputs: src, samples: 256, batchSize: 64 });
    prunes.push(r.seconds);
    probeParts.push(r.probe?.seconds ?? 0);
    const t1 = performance.now();
    const v = await compareOnInputs(model, r.model, { ...src, seed: 6 }, { samples: 256, batchSize: 64 });
    verifies.push((performance.now() - t1) / 1000);
    summary = { hidden_before: 100000, removed: r.removed.fc1, params_before: r.params_before, params_after: r.params_after, macs_before: r.macs_before, macs_after: r.macs_after, bytes_before: r.bytes_before, bytes_after: r.bytes_after, max_rel_error: v.max_rel_error };
  }
  out.mlp_prune = { ...summary, build_s: median(builds), prune_s: median(prunes), of_which_probe_s: median(probeParts), verify_s: median(verifies) };
  console.log(
    `prune    MLP 16-100000-10 'dead' on 256 samples: ${median(prunes).toFixed(3)} s (probe ${median(probeParts).toFixed(3)} s), removed ${String(summary.removed)} units, verify (256 samples, 2 models) ${median(verifies).toFixed(3)} s, max rel error ${Number(summary.max_rel_error).toExponential(2)}`,
  );
  const dir = path.join(ROOT, '.cache', 'bench');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'probe.json'), JSON.stringify(out, null, 1) + '\n');
  console.log(JSON.stringify(out));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
