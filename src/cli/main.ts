/**
 * model-surgeon: the command-line front end on the same core as the extension.
 * JSON field names are a contract (see README). `--json` prints only JSON on stdout.
 * Errors: one line on stderr, exit 1 (bad input), 2 (usage), 3 (verification over tolerance); no stack traces.
 */
import * as path from 'node:path';
import { errorMessage, foldBatchNorm, freezeBatchNorm, inspectAsync, loadModel, ModelError, saveModel, verify } from '../core/api';
import type { TfjsBackend } from '../core/engines/tfjs';
import { DEFAULT_ATOL, withinTolerance } from '../core/engines/onnxruntime';
import type { InspectReport, VerifyReport } from '../core/types';

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
  -o, --output    output file (fold-bn, freeze-bn)
  -h, --help      this help;  -V, --version  the version

Exit codes: 0 ok, 1 bad input or failure, 2 usage error, 3 verification above tolerance.
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
}

function parseArgs(argv: string[]): Args {
  const a: Args = { positional: [], json: false, stats: true, force: false, dims: {} };
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
    default:
      throw new UsageError(`unknown command '${cmd}'`);
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
