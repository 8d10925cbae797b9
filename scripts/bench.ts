/**
 * npm run bench: our figures as ratios against the named peer, measured in the same run.
 *
 * - inspect: load + per-layer statistics of a ~130 MB FCN-ResNet50 exported by PyTorch (random init,
 *   randomized BN statistics), against /usr/bin/python3 `onnx.load` + numpy per-tensor mean/std
 *   (scripts/bench/peer_inspect.py). Target: ours / peer <= 1.0.
 * - fold-bn: folding its 54 BatchNorms, excluding verification. Target < 0.5 s. Verification time reported apart.
 * - TF.js: open + statistics of the largest nsfwjs layers model (inception_v3, 23 MB of uint8 shards), fold +
 *   verify of it with the backend TF.js picks, and the verification of mobilenet_v2 on the wasm and the cpu
 *   backend in the same run (ratio cpu / wasm).
 * Each measurement runs in a fresh process; ours and the peer alternate; medians of RUNS runs.
 * The model is generated once into .cache/bench/ by scripts/bench/make_fcn_resnet50.py (needs python3-torch).
 * BENCH_ONLY=tfjs skips the ONNX part (and Python).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { nsfwModel } from '../test/helpers/nsfwjs';

const ROOT = path.join(__dirname, '..');
const CACHE = path.join(ROOT, '.cache', 'bench');
const MODEL = path.join(CACHE, 'fcn_resnet50.onnx');
const PY = '/usr/bin/python3';
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function json(cmd: string, args: string[]): Record<string, number> {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Record<string, number>;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function tfjsBench(): Record<string, unknown> {
  const inception = nsfwModel('inception_v3');
  const mobilenet = nsfwModel('mobilenet_v2');
  const inspects: number[] = [];
  for (let i = 0; i < RUNS; i++) inspects.push(json(process.execPath, ['--import', 'tsx', 'scripts/bench/ours.ts', 'inspect', inception]).seconds);
  const folds: Record<string, number>[] = [];
  let engine = '';
  for (let i = 0; i < 3; i++) {
    const f = json(process.execPath, ['--import', 'tsx', 'scripts/bench/ours.ts', 'fold', inception]) as Record<string, number> & { engine?: unknown };
    engine = String(f.engine);
    folds.push(f);
  }
  const per: Record<string, number[]> = { wasm: [], cpu: [] };
  for (let i = 0; i < 3; i++) for (const b of ['wasm', 'cpu']) per[b].push(json(process.execPath, ['--import', 'tsx', 'scripts/bench/ours.ts', 'fold', mobilenet, b]).verify_seconds);
  const r = {
    inception_v3_inspect_s: median(inspects),
    inception_v3_fold: { folded: folds[0].folded, fold_s: median(folds.map((f) => f.fold_seconds)), verify_s_one_sample: median(folds.map((f) => f.verify_seconds)), engine, max_rel_error: Math.max(...folds.map((f) => f.max_rel_error)) },
    mobilenet_v2_verify_one_sample: { wasm_s: median(per.wasm), cpu_s: median(per.cpu), cpu_over_wasm: median(per.cpu) / median(per.wasm) },
  };
  console.log(`tfjs     inception_v3 (nsfwjs, 23 MB uint8) open + stats ${r.inception_v3_inspect_s.toFixed(3)} s; fold ${r.inception_v3_fold.folded} BN ${r.inception_v3_fold.fold_s.toFixed(3)} s, verify (1 sample, 2 models, ${engine}) ${r.inception_v3_fold.verify_s_one_sample.toFixed(2)} s, max rel error ${r.inception_v3_fold.max_rel_error.toExponential(2)}`);
  console.log(`tfjs     mobilenet_v2 verify (1 sample): wasm ${r.mobilenet_v2_verify_one_sample.wasm_s.toFixed(2)} s, cpu ${r.mobilenet_v2_verify_one_sample.cpu_s.toFixed(2)} s, cpu/wasm ${r.mobilenet_v2_verify_one_sample.cpu_over_wasm.toFixed(1)}x`);
  return r;
}

function main(): void {
  mkdirSync(CACHE, { recursive: true });
  if (process.env.BENCH_ONLY === 'tfjs') {
    const tfjs = tfjsBench();
    writeFileSync(path.join(CACHE, 'results-tfjs.json'), JSON.stringify({ date: new Date().toISOString(), runs: RUNS, tfjs }, null, 2));
    return;
  }
  if (!existsSync(MODEL)) {
    console.log(`generating ${MODEL} with PyTorch (once) ...`);
    const r = spawnSync(PY, ['scripts/bench/make_fcn_resnet50.py', MODEL], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('could not generate the bench model (needs /usr/bin/python3 with torch, torchvision, onnx)');
  }
  const mb = statSync(MODEL).size / 1e6;
  console.log(`model: ${path.relative(ROOT, MODEL)} (${mb.toFixed(1)} MB); ${RUNS} runs each, fresh process per run`);
  const ours: number[] = [];
  const peer: number[] = [];
  const oursStats: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    peer.push(json(PY, ['scripts/bench/peer_inspect.py', MODEL]).seconds);
    const o = json(process.execPath, ['--import', 'tsx', 'scripts/bench/ours.ts', 'inspect', MODEL]);
    ours.push(o.seconds);
    oursStats.push(o.stats_seconds);
  }
  const folds: Record<string, number>[] = [];
  for (let i = 0; i < Math.max(3, Math.ceil(RUNS / 2)); i++) folds.push(json(process.execPath, ['--import', 'tsx', 'scripts/bench/ours.ts', 'fold', MODEL]));
  const result = {
    date: new Date().toISOString(),
    model_mb: mb,
    runs: RUNS,
    inspect: {
      ours_s: median(ours),
      ours_stats_only_s: median(oursStats),
      peer_s: median(peer),
      ratio: median(ours) / median(peer),
      target: '<= 1.0',
      ours_all: ours,
      peer_all: peer,
    },
    fold_bn: {
      folded: folds[0].folded,
      fold_s: median(folds.map((f) => f.fold_seconds)),
      target_s: 0.5,
      verify_s_one_sample: median(folds.map((f) => f.verify_seconds)),
      max_rel_error: Math.max(...folds.map((f) => f.max_rel_error)),
    },
  };
  const ok = (b: boolean) => (b ? 'OK' : 'MISSED');
  console.log(`inspect  ours ${result.inspect.ours_s.toFixed(3)} s (stats ${result.inspect.ours_stats_only_s.toFixed(3)} s)  peer (onnx.load + numpy) ${result.inspect.peer_s.toFixed(3)} s  ratio ${result.inspect.ratio.toFixed(2)} (target <= 1.0: ${ok(result.inspect.ratio <= 1)})`);
  console.log(`fold-bn  ${result.fold_bn.folded} BN folded in ${result.fold_bn.fold_s.toFixed(3)} s (target < 0.5 s: ${ok(result.fold_bn.fold_s < 0.5)}); verify (1 sample, 2 sessions) ${result.fold_bn.verify_s_one_sample.toFixed(2)} s, max rel error ${result.fold_bn.max_rel_error.toExponential(2)}`);
  const tfjs = tfjsBench();
  writeFileSync(path.join(CACHE, 'results.json'), JSON.stringify({ ...result, tfjs }, null, 2));
  console.log(`results: ${path.relative(ROOT, path.join(CACHE, 'results.json'))}`);
  // probing overhead vs plain inference, probe throughput, pruning the 100000-unit MLP (own process, own results file)
  const probe = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/bench/probe.ts'], { cwd: ROOT, stdio: 'inherit' });
  if (probe.status !== 0) throw new Error('scripts/bench/probe.ts failed');
}

main();
