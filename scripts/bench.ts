/**
 * npm run bench: our figures as ratios against the named peer, measured in the same run.
 *
 * - inspect: load + per-layer statistics of a ~130 MB FCN-ResNet50 exported by PyTorch (random init,
 *   randomized BN statistics), against /usr/bin/python3 `onnx.load` + numpy per-tensor mean/std
 *   (scripts/bench/peer_inspect.py). Target: ours / peer <= 1.0.
 * - fold-bn: folding its 54 BatchNorms, excluding verification. Target < 0.5 s. Verification time reported apart.
 * Each measurement runs in a fresh process; ours and the peer alternate; medians of RUNS runs.
 * The model is generated once into .cache/bench/ by scripts/bench/make_fcn_resnet50.py (needs python3-torch).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

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

function main(): void {
  mkdirSync(CACHE, { recursive: true });
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
  writeFileSync(path.join(CACHE, 'results.json'), JSON.stringify(result, null, 2));
  const ok = (b: boolean) => (b ? 'OK' : 'MISSED');
  console.log(`inspect  ours ${result.inspect.ours_s.toFixed(3)} s (stats ${result.inspect.ours_stats_only_s.toFixed(3)} s)  peer (onnx.load + numpy) ${result.inspect.peer_s.toFixed(3)} s  ratio ${result.inspect.ratio.toFixed(2)} (target <= 1.0: ${ok(result.inspect.ratio <= 1)})`);
  console.log(`fold-bn  ${result.fold_bn.folded} BN folded in ${result.fold_bn.fold_s.toFixed(3)} s (target < 0.5 s: ${ok(result.fold_bn.fold_s < 0.5)}); verify (1 sample, 2 sessions) ${result.fold_bn.verify_s_one_sample.toFixed(2)} s, max rel error ${result.fold_bn.max_rel_error.toExponential(2)}`);
  console.log(`results: ${path.relative(ROOT, path.join(CACHE, 'results.json'))}`);
}

main();
