/**
 * model-surgeon: the command-line front end on the same core as the extension.
 * JSON field names are a contract (see README). `--json` prints only JSON on stdout.
 * Errors: one line on stderr, exit 1 (bad input), 2 (usage), 3 (verification over tolerance); no stack traces.
 */
import * as path from 'node:path';
import { mergeFindings } from '../core/doctor';
import { inputSourceFromPath, probe, prune, swapActivations } from '../core/api';
import type { SwapSource, SwapTarget } from '../core/formats/onnx/swap-activation';
import { applyFix, audit, DOCTOR_REWRITES, errorMessage, foldBatchNorm, freezeBatchNorm, inspect, inspectAsync, loadModel, ModelError, planMemory, saveModel, verify, type AuditReport, type DoctorRewrite, type FixOptions, type Model } from '../core/api';
import type { TfjsBackend } from '../core/engines/tfjs';
import { DEFAULT_ATOL, withinTolerance } from '../core/engines/onnxruntime';
import type { InspectReport, MemoryPlanReport, OptimizerKind, PruneCriterion, VerifyReport } from '../core/types';

const VERSION = '0.1.0';

const HELP = `model-surgeon ${VERSION} - inspect and operate on trained model files
(ONNX .onnx, TensorFlow.js model.json + shards (layers and graph models), Keras .h5 and .keras;
chosen by content, not by extension)

Usage:
  model-surgeon inspect <model> [--json] [--no-stats] [--dim NAME=N ...]
      Per-layer statistics: op, params, output shape, MACs, weight statistics, BatchNorm
      summaries, totals and findings.
  model-surgeon fold-bn <model> -o <out> [--json] [--samples N] [--seed S] [--dim NAME=N ...]
                        [--tolerance T] [--force]
                        [--requantize uint8|uint16] [--backend node|wasm|cpu]
      Fold every foldable BatchNorm into the Conv/ConvTranspose/Gemm/MatMul/Dense before it,
      verify by running both models (onnxruntime for ONNX, TensorFlow.js for TF.js/Keras) on
      seeded probe inputs, and write <out> atomically (TF.js: <out> is the new model.json,
      shards are written next to it first). Nothing is written when an output differs by more
      than 1e-6 + T x (largest |value| of that output), T = --tolerance (default 1e-4), unless
      --force is given. Quantized TF.js weights that are rewritten are written as float32
      unless --requantize is given.
  model-surgeon freeze-bn <model> -o <out> [--json]
      Keras / TF.js layers models: set every BatchNorm to trainable: false (Keras 2+ then keeps
      it in inference mode, also while fine-tuning) and write <out>.
  model-surgeon verify <a> <b> [--json] [--samples N] [--seed S] [--dim NAME=N ...] [--tolerance T]
      Run both models on the same seeded probe inputs and report the largest output difference.
  model-surgeon audit <model> [--json] [--batch N] [--input HxW] [--dim NAME=N ...]
      BatchNorm and Dropout audit: effective batch of every BatchNorm (batch-size-1 hazards),
      dead / risky channels, BN in training mode, BN that cannot be folded and why, Dropout next
      to BN, Dropout left in an inference graph. Exit 4 when an error-level finding exists.
  model-surgeon plan <model> [--json] [--input HxW] [--batch N] [--gpu-mem SIZE]
                     [--optimizer adam|sgd|sgd-momentum|none] [--dtype float32|float16]
                     [--crops 224,320,512] [--dim NAME=N ...]
      Memory and batch-size planner (ONNX: NCHW; TF.js layers, Keras .h5/.keras: NHWC):
      activation memory per layer for inference and training, parameters, gradients,
      optimizer state, the largest batch that fits SIZE (e.g. 12GiB), and crops versus full
      images.
  model-surgeon probe <model> [--json] [--samples N] [--batch-size B] [--inputs PATH] [--dim NAME=N ...]
                      [--apoz-threshold T] [--exact-stats]
      Run the model on probe inputs (seeded N(0,1) by default; or a folder of .png/.jpg images,
      a .npy/.npz file or a JSON array) and report, for every activation layer, per-channel
      APoZ (fraction of non-positive outputs), mean, variance, max, and the dead (never
      positive) and constant units.
  model-surgeon prune <model> -o <out> (--dead | --ratio R --criterion l1|l2|bn-gamma|apoz)
                      [--scope layer|global] [--samples N] [--inputs PATH] [--json] [--force]
      Remove units/channels physically (the producing layer's rows, its BatchNorm, the
      consumer's columns; coupled channels together) and verify both models on the same probe
      inputs. --dead is exact on those inputs (a removed constant unit is folded into the
      consumer's bias): nothing is written above the tolerance unless --force. Magnitude/APoZ
      criteria change the function: the deviation is reported (fine-tune after).
  model-surgeon swap-activation <model> --to selu|elu|gelu|leaky-relu [--from relu,relu6,leaky-relu]
                      -o <out> [--json] [--samples N] [--inputs PATH]
      Replace activations (the SELU recipe folds BatchNorm first). A swap changes a trained
      model's function: the deviation and the activation mean/variance by depth before and
      after are reported.
  model-surgeon fix <model> <fix> -o <out> [--json] [--layer NAME ...] [--rate P]
                    [--groups G] [verification options]
      Apply one of the fixes findings point at, verified like fold-bn unless it changes the
      outputs on purpose (then the deviation is reported, not gated).
      ONNX: fold-batchnorm-forward, batchnorm-to-affine, remove-dropout, batchnorm-eval-mode.
      TF.js layers / Keras: fold-batchnorm-forward, batchnorm-to-affine (a 1x1
      DepthwiseConv2D on NHWC maps), remove-dropout; set-dropout-rate --rate P (a training-time
      setting, inference unchanged); replace-batchnorm-groupnorm [--groups G] (BatchNorm ->
      GroupNormalization, or LayerNormalization on [N, C]; needs fine-tuning; TF.js has no
      GroupNormalization, so that deviation is not measured). --layer limits them to layers.

Options:
  --json          print only JSON on stdout
  --samples N     probe samples for verification (default 3)
  --seed S        seed of the probe inputs (default 1)
  --dim NAME=N    value of a symbolic input dimension (unknown symbolic dims default to 1)
  --tolerance T   accepted difference: 1e-6 + T x largest |output| (fold-bn default 1e-4;
                  verify: exit 3 above it)
  --no-stats      inspect: skip per-tensor statistics
  --requantize D  fold-bn on quantized TF.js weights: re-quantize rewritten tensors (uint8|uint16)
  --backend B     TF.js backend for verification (node|wasm|cpu; default: the first that works)
  -o, --output    output file (fold-bn, freeze-bn, fix)
  --batch N       audit / plan: batch size (default: the model's static batch, else 1)
  --input HxW     audit / plan: spatial size of image inputs (e.g. 512x512)
  --gpu-mem SIZE  plan: memory to fit (e.g. 12GiB, 16GB, 8000MiB)
  --rate P        fix set-dropout-rate: the new rate, 0 <= P < 1
  --layer NAME    fix (Keras/TF.js): only this layer (repeat, or NAME,NAME)
  --groups G      fix replace-batchnorm-groupnorm: GroupNormalization groups (default 32, at
                  least 2 channels per group; the largest divisor of the channel count <= G)
  --inputs PATH   probe / prune / swap-activation: probe inputs (image folder, .npy, .npz, .json)
  --batch-size B  probe: samples per run (default 16)
  --apoz-threshold T  probe: APoZ at or above which a unit counts as dead (default 1: never positive)
  --exact-stats   probe (ONNX): copy the activations out and compute mean / variance in float64
                  (slower; by default they are computed in float32 inside onnxruntime, ~1e-6 relative;
                  dead / constant units, APoZ, min and max are exact either way)
  --dead          prune: remove the units that are constant (dead) on the probe inputs
  --ratio R       prune: fraction of channels to remove (with --criterion; --scope layer|global)
  --to / --from   swap-activation: target and source activations
  -h, --help      this help;  -V, --version  the version

Exit codes: 0 ok, 1 bad input or failure, 2 usage error, 3 verification above tolerance,
4 audit found an error-level finding.
max_rel_error is the largest absolute difference divided by the largest magnitude of that output.`;

class UsageError extends Error {}

interface Args {
  positional: string[];
  json: boolean;
  stats: boolean;
  force: boolean;
  output?: string;
  samples?: number;
  seed?: number;
  tolerance?: number;
  dims: Record<string, number>;
  requantize?: 'uint8' | 'uint16';
  backend?: TfjsBackend;
  batch?: number;
  input?: [number, number];
  gpuMem?: string;
  optimizer?: OptimizerKind;
  dtypeBytes?: number;
  crops?: number[];
  rate?: number;
  layers: string[];
  groups?: number;
  inputs?: string;
  batchSize?: number;
  apozThreshold?: number;
  exactStats?: boolean;
  dead?: boolean;
  ratio?: number;
  criterion?: PruneCriterion;
  scope?: 'layer' | 'global';
  to?: SwapTarget;
  from?: SwapSource[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { positional: [], json: false, stats: true, force: false, dims: {}, layers: [] };
  const value = (i: number, flag: string) => {
    const v = argv[i + 1];
    if (v === undefined || (v.startsWith('-') && v.length > 1 && Number.isNaN(Number(v)))) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  const num = (v: string, flag: string, int: boolean) => {
    const n = Number(v);
    if (!Number.isFinite(n) || (int && (!Number.isInteger(n) || n < 1))) throw new UsageError(`${flag} expects ${int ? 'a positive integer' : 'a number'}, got '${v}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i];
    switch (t) {
      case '--json':
        a.json = true;
        break;
      case '--no-stats':
        a.stats = false;
        break;
      case '--force':
        a.force = true;
        break;
      case '-o':
      case '--output':
        a.output = value(i++, t);
        break;
      case '--samples':
        a.samples = num(value(i++, t), t, true);
        break;
      case '--seed':
        a.seed = num(value(i++, t), t, false);
        break;
      case '--tolerance':
        a.tolerance = num(value(i++, t), t, false);
        break;
      case '--requantize': {
        const v = value(i++, t);
        if (v !== 'uint8' && v !== 'uint16') throw new UsageError(`--requantize expects uint8 or uint16, got '${v}'`);
        a.requantize = v;
        break;
      }
      case '--backend': {
        const v = value(i++, t);
        if (v !== 'node' && v !== 'wasm' && v !== 'cpu') throw new UsageError(`--backend expects node, wasm or cpu, got '${v}'`);
        a.backend = v;
        break;
      }
      case '--batch':
        a.batch = num(value(i++, t), t, true);
        break;
      case '--input': {
        const v = value(i++, t);
        const m = /^(\d+)(?:[x,](\d+))?$/i.exec(v);
        if (!m || Number(m[1]) < 1) throw new UsageError(`--input expects HxW (e.g. 512x512), got '${v}'`);
        a.input = [Number(m[1]), Number(m[2] ?? m[1])];
        break;
      }
      case '--inputs':
        a.inputs = value(i++, t);
        break;
      case '--batch-size':
        a.batchSize = num(value(i++, t), t, true);
        break;
      case '--apoz-threshold': {
        const v = num(value(i++, t), t, false);
        if (v <= 0 || v > 1) throw new UsageError(`--apoz-threshold expects a fraction in (0, 1], got '${v}'`);
        a.apozThreshold = v;
        break;
      }
      case '--exact-stats':
        a.exactStats = true;
        break;
      case '--dead':
        a.dead = true;
        break;
      case '--ratio': {
        const v = num(value(i++, t), t, false);
        if (v <= 0 || v >= 1) throw new UsageError(`--ratio expects a fraction in (0, 1), got '${v}'`);
        a.ratio = v;
        break;
      }
      case '--criterion': {
        const v = value(i++, t);
        if (v !== 'l1' && v !== 'l2' && v !== 'bn-gamma' && v !== 'apoz' && v !== 'dead') throw new UsageError(`--criterion expects l1, l2, bn-gamma or apoz, got '${v}'`);
        a.criterion = v;
        break;
      }
      case '--scope': {
        const v = value(i++, t);
        if (v !== 'layer' && v !== 'global') throw new UsageError(`--scope expects layer or global, got '${v}'`);
        a.scope = v;
        break;
      }
      case '--to': {
        const v = value(i++, t);
        if (v !== 'selu' && v !== 'elu' && v !== 'gelu' && v !== 'leaky-relu') throw new UsageError(`--to expects selu, elu, gelu or leaky-relu, got '${v}'`);
        a.to = v;
        break;
      }
      case '--from': {
        const v = value(i++, t).split(',');
        if (v.some((x) => x !== 'relu' && x !== 'relu6' && x !== 'leaky-relu')) throw new UsageError(`--from expects relu, relu6 and/or leaky-relu, got '${v.join(',')}'`);
        a.from = v as SwapSource[];
        break;
      }
      case '--gpu-mem':
        a.gpuMem = value(i++, t);
        break;
      case '--optimizer': {
        const v = value(i++, t);
        if (v !== 'adam' && v !== 'sgd' && v !== 'sgd-momentum' && v !== 'none') throw new UsageError(`--optimizer expects adam, sgd, sgd-momentum or none, got '${v}'`);
        a.optimizer = v;
        break;
      }
      case '--dtype': {
        const v = value(i++, t);
        if (v !== 'float32' && v !== 'float16' && v !== 'bfloat16') throw new UsageError(`--dtype expects float32, float16 or bfloat16, got '${v}'`);
        a.dtypeBytes = v === 'float32' ? 4 : 2;
        break;
      }
      case '--crops': {
        const v = value(i++, t);
        const list = v.split(',').map((x) => Number(x));
        if (!list.length || list.some((x) => !Number.isInteger(x) || x < 1)) throw new UsageError(`--crops expects sizes like 224,320,512, got '${v}'`);
        a.crops = list;
        break;
      }
      case '--rate': {
        const v = value(i++, t);
        const n = Number(v);
        if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw new UsageError(`--rate expects a number with 0 <= P < 1, got '${v}'`);
        a.rate = n;
        break;
      }
      case '--layer':
        a.layers.push(...value(i++, t).split(',').filter((x) => x));
        break;
      case '--groups':
        a.groups = num(value(i++, t), t, true);
        break;
      case '--dim': {
        const v = value(i++, t);
        const m = /^([^=]+)=(\d+)$/.exec(v);
        if (!m || Number(m[2]) < 1) throw new UsageError(`--dim expects NAME=N with N >= 1, got '${v}'`);
        a.dims[m[1]] = Number(m[2]);
        break;
      }
      default:
        if (t.startsWith('-') && t !== '-') throw new UsageError(`unknown option ${t}`);
        a.positional.push(t);
    }
  }
  return a;
}

const out = (s: string) => process.stdout.write(s + '\n');

function fmt(n: number | null): string {
  if (n === null) return '?';
  if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(2) + 'G';
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(2) + 'M';
  if (Math.abs(n) >= 1e3) return (n / 1e3).toFixed(1) + 'k';
  return String(n);
}

function printInspect(r: InspectReport, file: string): void {
  const m = r.model;
  if (r.format === 'onnx') out(`${path.basename(file)}: ${r.format}, IR ${m.ir_version ?? '?'}, opset ${m.opsets.map((o) => (o.domain === 'ai.onnx' ? o.version : `${o.domain} ${o.version}`)).join(', ')}, producer ${m.producer || '?'} ${m.producer_version}`);
  else out(`${path.basename(file)}: ${r.format}${m.graph_name ? ` '${m.graph_name}'` : ''}, producer ${m.producer || '?'} ${m.producer_version}`);
  out(`inputs: ${m.inputs.map((i) => `${i.name} ${i.dtype}[${(i.shape ?? []).map((d) => d ?? '?').join('x')}]`).join(', ')}`);
  out(`params ${fmt(r.totals.params)}, MACs ${fmt(r.totals.macs)}, layers ${r.totals.layers}, weights ${fmt(m.weight_bytes)}B, file ${fmt(m.file_bytes)}B`);
  out('');
  const rows = r.layers.map((l) => [String(l.index), l.name, l.op, l.output_shape ? `[${l.output_shape.map((d) => d ?? '?').join('x')}]` : '?', fmt(l.params), fmt(l.macs)]);
  const head = ['#', 'name', 'op', 'output', 'params', 'MACs'];
  const widths = head.map((h, k) => Math.min(48, Math.max(h.length, ...rows.map((row) => row[k].length))));
  const line = (cells: string[]) => cells.map((c, k) => (k >= 4 ? c.padStart(widths[k]) : c.slice(0, widths[k]).padEnd(widths[k]))).join('  ');
  out(line(head));
  rows.forEach((row) => out(line(row)));
  if (r.findings.length) {
    out('');
    for (const f of r.findings) out(`${f.severity}: [${f.code}] ${f.message}`);
  }
}

function verifyLine(v: VerifyReport): string {
  return `max abs error ${v.max_abs_error.toExponential(2)}, max rel error ${v.max_rel_error.toExponential(2)} over ${v.samples} sample(s) (${v.engine}, inputs ${Object.entries(v.input_shapes).map(([k, s]) => `${k}=[${s.join('x')}]`).join(', ')})`;
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '-h' || argv[0] === '--help' || argv[0] === 'help') {
    out(HELP);
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === '-V' || argv[0] === '--version') {
    out(VERSION);
    return 0;
  }
  const [cmd, ...rest] = argv;
  if (rest.includes('-h') || rest.includes('--help')) {
    out(HELP);
    return 0;
  }
  const args = parseArgs(rest);
  const vopts = { samples: args.samples, seed: args.seed, dims: args.dims, backend: args.backend };
  switch (cmd) {
    case 'inspect': {
      if (args.positional.length !== 1) throw new UsageError('inspect takes exactly one model file');
      const model = await loadModel(args.positional[0]);
      const report = await inspectAsync(model, { stats: args.stats, dims: args.dims });
      if (args.json) out(JSON.stringify(report));
      else printInspect(report, args.positional[0]);
      return 0;
    }
    case 'fold-bn': {
      if (args.positional.length !== 1) throw new UsageError('fold-bn takes exactly one model file');
      if (!args.output) throw new UsageError('fold-bn needs an output file: -o <out>');
      const model = await loadModel(args.positional[0]);
      const t0 = performance.now();
      const result = foldBatchNorm(model, args.requantize ? { requantize: args.requantize } : {});
      const foldSeconds = (performance.now() - t0) / 1000;
      const v = await verify(model, result.model, vopts);
      const tolerance = args.tolerance ?? 1e-4;
      const ok = withinTolerance(v, tolerance);
      const written = ok || args.force;
      if (written) await saveModel(result.model, args.output);
      if (args.json) {
        out(
          JSON.stringify({
            folded: result.plan.candidates.length,
            folds: result.plan.candidates,
            skipped: result.plan.skipped,
            verify: v,
            size: result.size,
            fold_seconds: foldSeconds,
            notes: result.notes,
            output: written ? path.resolve(args.output) : null,
          }),
        );
      } else {
        out(`folded ${result.plan.candidates.length} BatchNorm layer(s)`);
        for (const c of result.plan.candidates) out(`  ${c.batchnorm} -> ${c.into} (${c.into_op})`);
        if (result.plan.skipped.length) out(`skipped ${result.plan.skipped.length}:`);
        for (const s of result.plan.skipped) out(`  ${s.layer}: ${s.reason}`);
        out(`verify: ${verifyLine(v)}`);
        out(`params ${result.size.params_before} -> ${result.size.params_after}, weight bytes ${result.size.bytes_before} -> ${result.size.bytes_after}, layers ${result.size.layers_before} -> ${result.size.layers_after}`);
        for (const n of result.notes) out(`note: ${n}`);
        if (written) out(`wrote ${args.output}`);
      }
      if (!ok) {
        process.stderr.write(`model-surgeon: error: outputs differ by more than ${DEFAULT_ATOL} + ${tolerance} x |output| (max abs error ${v.max_abs_error.toExponential(2)}, max rel error ${v.max_rel_error.toExponential(2)}); ${written ? 'written anyway (--force)' : 'nothing written'}\n`);
        return 3;
      }
      return 0;
    }
    case 'freeze-bn': {
      if (args.positional.length !== 1) throw new UsageError('freeze-bn takes exactly one model file');
      if (!args.output) throw new UsageError('freeze-bn needs an output file: -o <out>');
      const model = await loadModel(args.positional[0]);
      const result = freezeBatchNorm(model);
      await saveModel(result.model, args.output);
      if (args.json) out(JSON.stringify({ frozen: result.frozen.length, layers: result.frozen, output: path.resolve(args.output) }));
      else {
        out(`froze ${result.frozen.length} BatchNorm layer(s) (trainable: false)`);
        for (const n of result.frozen) out(`  ${n}`);
        out(`wrote ${args.output}`);
      }
      return 0;
    }
    case 'verify': {
      if (args.positional.length !== 2) throw new UsageError('verify takes two model files');
      const [a, b] = await Promise.all(args.positional.map((p) => loadModel(p)));
      const v = await verify(a, b, vopts);
      if (args.json) out(JSON.stringify(v));
      else out(verifyLine(v));
      if (args.tolerance !== undefined && !withinTolerance(v, args.tolerance)) {
        process.stderr.write(`model-surgeon: error: outputs differ by more than ${DEFAULT_ATOL} + ${args.tolerance} x |output| (max abs error ${v.max_abs_error.toExponential(2)}, max rel error ${v.max_rel_error.toExponential(2)})\n`);
        return 3;
      }
      return 0;
    }
    case 'audit': {
      if (args.positional.length !== 1) throw new UsageError('audit takes exactly one model file');
      const model = await loadModel(args.positional[0]);
      const report = audit(model, { batchSize: args.batch, dims: args.dims, inputShapes: args.input ? imageInputShapes(model, args.input) : undefined });
      // every finding, also inspect's own (e.g. non-finite weights): audit is the CI gate
      report.findings = mergeFindings((await inspectAsync(model, { dims: args.dims })).findings, report.findings);
      if (args.json) out(JSON.stringify(report));
      else printAudit(report);
      return report.findings.some((f) => f.severity === 'error') ? 4 : 0;
    }
    case 'plan': {
      if (args.positional.length !== 1) throw new UsageError('plan takes exactly one model file');
      const model = await loadModel(args.positional[0]);
      const report = planMemory(model, {
        batch: args.batch,
        height: args.input?.[0],
        width: args.input?.[1],
        dims: args.dims,
        budget: args.gpuMem,
        optimizer: args.optimizer,
        dtypeBytes: args.dtypeBytes,
        crops: args.crops,
      });
      if (args.json) out(JSON.stringify(report));
      else printPlan(report);
      return 0;
    }
    case 'probe': {
      if (args.positional.length !== 1) throw new UsageError('probe takes exactly one model file');
      const model = await loadModel(args.positional[0]);
      const report = await probe(model, args.inputs ? inputSourceFromPath(args.inputs) : { kind: 'random', seed: args.seed }, {
        samples: args.samples,
        batchSize: args.batchSize,
        dims: args.dims,
        apozThreshold: args.apozThreshold,
        inGraph: args.exactStats ? false : undefined,
      });
      if (args.json) out(JSON.stringify(report));
      else {
        out(`${report.samples} sample(s) from ${report.source} (${report.engine}, ${report.seconds.toFixed(2)} s)`);
        out('layer                                    op         channels  dead  constant  mean APoZ');
        for (const l of report.layers) {
          const apoz = l.apoz.length ? l.apoz.reduce((x, y) => x + y, 0) / l.apoz.length : 0;
          out(`${l.name.slice(0, 40).padEnd(41)}${l.op.padEnd(11)}${String(l.channels).padStart(8)}  ${String(l.dead.length).padStart(4)}  ${String(l.constant.length).padStart(8)}  ${(apoz * 100).toFixed(1).padStart(8)}%`);
        }
        for (const n of report.notes) out(`note: ${n}`);
      }
      return 0;
    }
    case 'prune': {
      if (args.positional.length !== 1) throw new UsageError('prune takes exactly one model file');
      if (!args.output) throw new UsageError('prune needs an output file: -o <out>');
      const criterion: PruneCriterion | undefined = args.dead ? 'dead' : args.criterion;
      if (!criterion) throw new UsageError('prune needs --dead or --ratio R --criterion l1|l2|bn-gamma|apoz');
      if (criterion !== 'dead' && args.ratio === undefined) throw new UsageError(`--criterion ${criterion} needs --ratio R`);
      const model = await loadModel(args.positional[0]);
      const result = await prune(model, {
        criterion,
        ratio: args.ratio,
        scope: args.scope,
        inputs: args.inputs ? inputSourceFromPath(args.inputs) : undefined,
        samples: args.samples,
        batchSize: args.batchSize,
        dims: args.dims,
      });
      const exact = criterion === 'dead';
      const tolerance = args.tolerance ?? 1e-4;
      const ok = !exact || withinTolerance(result.verify, tolerance);
      const written = ok || args.force;
      if (written) await saveModel(result.model, args.output);
      if (args.json) {
        out(
          JSON.stringify({
            criterion,
            removed: result.removed,
            params_before: result.params_before,
            params_after: result.params_after,
            macs_before: result.macs_before,
            macs_after: result.macs_after,
            bytes_before: result.bytes_before,
            bytes_after: result.bytes_after,
            verify: result.verify,
            exact,
            skipped: result.plan.skipped,
            notes: result.plan.notes,
            output: written ? path.resolve(args.output) : null,
          }),
        );
      } else {
        const total = Object.values(result.removed).reduce((x, y) => x + y, 0);
        out(`removed ${total} unit(s)/channel(s) from ${Object.keys(result.removed).length} layer(s) (${criterion})`);
        for (const [layer, n] of Object.entries(result.removed)) out(`  ${layer}: -${n}`);
        out(`params ${result.params_before} -> ${result.params_after}, MACs ${result.macs_before ?? '?'} -> ${result.macs_after ?? '?'}, bytes ${result.bytes_before} -> ${result.bytes_after}`);
        out(`verify: ${verifyLine(result.verify)}${exact ? '' : ' (pruning by this criterion changes the function: fine-tune after)'}`);
        if (written) out(`wrote ${args.output}`);
      }
      if (!ok) {
        process.stderr.write(`model-surgeon: error: outputs differ by more than ${DEFAULT_ATOL} + ${tolerance} x |output| after removing dead units (max abs error ${result.verify.max_abs_error.toExponential(2)}); ${written ? 'written anyway (--force)' : 'nothing written'}\n`);
        return 3;
      }
      return 0;
    }
    case 'swap-activation': {
      if (args.positional.length !== 1) throw new UsageError('swap-activation takes exactly one model file');
      if (!args.to) throw new UsageError('swap-activation needs --to selu|elu|gelu|leaky-relu');
      if (!args.output) throw new UsageError('swap-activation needs an output file: -o <out>');
      const model = await loadModel(args.positional[0]);
      const source = args.inputs ? inputSourceFromPath(args.inputs) : { kind: 'random' as const, seed: args.seed };
      const result = await swapActivations(model, { to: args.to, from: args.from }, source, { samples: args.samples, dims: args.dims });
      await saveModel(result.model, args.output);
      const m = result.measurement;
      if (args.json) out(JSON.stringify({ swapped: result.swapped, removed_bn: result.removed_bn, replaced_dropout: result.replaced_dropout, skipped: result.skipped, notes: result.notes, deviation: m.deviation, profile: m.profile, output: path.resolve(args.output) }));
      else {
        out(`swapped ${result.swapped} activation(s) to ${args.to}; BatchNorm folded: ${result.removed_bn}; Dropout (identity at inference either way): ${result.replaced_dropout}`);
        out(`deviation from the trained model: ${verifyLine(m.deviation)}`);
        out('depth  layer                                   mean before -> after     var before -> after');
        m.profile.forEach((r, k) => out(`${String(k).padStart(5)}  ${String(r.layer).slice(0, 38).padEnd(39)} ${r.mean_before.toFixed(3).padStart(8)} -> ${(r.mean_after === null ? '?' : r.mean_after.toFixed(3)).padEnd(9)} ${r.var_before.toFixed(3).padStart(9)} -> ${r.var_after === null ? '?' : r.var_after.toFixed(3)}`));
        for (const n of result.notes) out(`note: ${n}`);
        out(`wrote ${args.output}`);
      }
      return 0;
    }
    case 'fix': {
      if (args.positional.length !== 2) throw new UsageError(`fix takes a model file and a fix (${DOCTOR_REWRITES.join(', ')})`);
      const id = args.positional[1] as DoctorRewrite;
      if (!DOCTOR_REWRITES.includes(id)) throw new UsageError(`unknown fix '${args.positional[1]}' (one of ${DOCTOR_REWRITES.join(', ')}; fold-batchnorm is fold-bn, freeze-batchnorm is freeze-bn)`);
      if (!args.output) throw new UsageError('fix needs an output file: -o <out>');
      if (args.rate !== undefined && id !== 'set-dropout-rate') throw new UsageError('--rate applies to set-dropout-rate');
      if (args.rate === undefined && id === 'set-dropout-rate') throw new UsageError('set-dropout-rate needs --rate P (0 <= P < 1)');
      if (args.groups !== undefined && id !== 'replace-batchnorm-groupnorm') throw new UsageError('--groups applies to replace-batchnorm-groupnorm');
      const fixOpts: FixOptions = { ...(args.rate !== undefined ? { rate: args.rate } : {}), ...(args.layers.length ? { layers: args.layers } : {}), ...(args.groups !== undefined ? { groups: args.groups } : {}) };
      const model = await loadModel(args.positional[0]);
      const result = applyFix(model, id, fixOpts);
      const v = result.applied > 0 && !result.unverifiable ? await verify(model, result.model, vopts) : null;
      const tolerance = args.tolerance ?? 1e-4;
      const ok = !v || !result.preserves_outputs || withinTolerance(v, tolerance);
      const written = ok || args.force;
      if (written) await saveModel(result.model, args.output);
      if (args.json) out(JSON.stringify({ fix: id, applied: result.applied, plan: result.plan, preserves_outputs: result.preserves_outputs, verify: v, unverifiable: result.unverifiable, notes: result.notes, size: result.size, output: written ? path.resolve(args.output) : null }));
      else {
        out(`${id}: applied to ${result.applied} layer(s)`);
        for (const c of result.plan.candidates) out(`  ${'batchnorm' in c ? `${c.batchnorm} -> ${c.into} (${c.into_op})` : `${c.layer}: ${c.action}`}`);
        for (const sk of result.plan.skipped) out(`  skipped ${sk.layer}: ${sk.reason}`);
        if (v) out(`verify: ${verifyLine(v)}${result.preserves_outputs ? '' : ' (this fix changes outputs on purpose: the measured deviation)'}`);
        else if (result.unverifiable) out(`verify: not run (${result.unverifiable})`);
        for (const n of result.notes) if (n !== result.unverifiable) out(`note: ${n}`);
        if (written) out(`wrote ${args.output}`);
      }
      if (!ok) {
        process.stderr.write(`model-surgeon: error: outputs differ by more than ${DEFAULT_ATOL} + ${tolerance} x |output| (max abs error ${v?.max_abs_error.toExponential(2)}); ${written ? 'written anyway (--force)' : 'nothing written'}\n`);
        return 3;
      }
      return 0;
    }
    default:
      throw new UsageError(`unknown command '${cmd}'`);
  }
}

/** HxW applied to every rank-4 input (NCHW for ONNX, NHWC for Keras/TF.js) */
function imageInputShapes(model: Model, [h, w]: [number, number]): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (const i of inspect(model, { stats: false }).model.inputs) {
    if (!i.shape || i.shape.length !== 4) continue;
    const s = i.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    if (model.format === 'onnx') [s[2], s[3]] = [h, w];
    else [s[1], s[2]] = [h, w];
    shapes[i.name] = s;
  }
  return shapes;
}

function printAudit(r: AuditReport): void {
  const bn = r.batchnorm;
  out(`BatchNorm layers: ${bn.rows.length} (batch size ${bn.batch_size}, ${bn.batch_source})`);
  for (const row of bn.rows) out(`  ${row.layer}: ${row.context}, effective batch ${row.effective_batch ?? '?'}`);
  out(`Dropout layers: ${r.dropout.rows.length}`);
  for (const row of r.dropout.rows) out(`  ${row.layer}${row.native_op && row.native_op !== 'Dropout' ? ` (${row.native_op})` : ''}: rate ${row.rate === null ? '?' : Number(row.rate.toPrecision(4))}, ${row.mode}`);
  if (r.findings.length) out('');
  for (const f of r.findings) out(`${f.severity}: [${f.code}] ${f.message}${f.fix ? ` (fix: ${f.fix})` : ''}`);
}

const GiB = 1024 ** 3;
const mib = (b: number) => `${(b / 1024 ** 2).toFixed(1)} MiB`;

function printPlan(r: MemoryPlanReport): void {
  out(`inputs ${Object.entries(r.input_shapes).map(([k, s]) => `${k}=[${s.join('x')}]`).join(', ')}, batch ${r.batch_size}, ${r.dtype_bytes * 8}-bit activations, optimizer ${r.optimizer}`);
  out(`params ${r.params} (${mib(r.training.param_bytes)})`);
  out(`inference: activations peak ${mib(r.inference.activation_bytes)}${r.peak_layer ? ` at ${r.peak_layer}` : ''}, total ${mib(r.inference.total_bytes)}`);
  out(`training:  activations kept ${mib(r.training.activation_bytes)}, gradients ${mib(r.training.gradient_bytes)}, optimizer ${mib(r.training.optimizer_bytes)}, total ${mib(r.training.total_bytes)}`);
  if (r.budget) out(`largest batch in ${(r.budget.bytes / GiB).toFixed(2)} GiB: training ${r.budget.max_batch_training}, inference ${r.budget.max_batch_inference}`);
  for (const n of r.notes) if (n.startsWith('at this input size')) out(`note: ${n}`);
  if (r.crops?.length) {
    out('crop         training/image  inference/image  max batch (training)');
    for (const c of r.crops) out(`${`${c.size[0]}x${c.size[1]}${c.full_image ? ' (full)' : ''}`.padEnd(13)}${mib(c.training_bytes_per_image).padStart(14)}  ${mib(c.inference_bytes_per_image).padStart(15)}  ${String(c.max_batch_training ?? '-').padStart(20)}`);
  }
}

// `model-surgeon inspect x | head` closes the pipe early: that is not an error
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`model-surgeon: ${err.message} (see model-surgeon --help)\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`model-surgeon: error: ${errorMessage(err)}\n`);
    if (process.env.MODEL_SURGEON_DEBUG && err instanceof Error && !(err instanceof ModelError)) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  },
);
