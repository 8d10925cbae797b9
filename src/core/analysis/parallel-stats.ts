/**
 * Weight statistics on two cores: a worker thread and the calling thread take tensors from one queue. Tensors
 * of a model read into a shared WebAssembly memory go to the SIMD kernels (wasm-kernels.ts) on both threads,
 * in place; other shared tensors to weightStats; with nothing shared, the worker gets about half of the bytes as
 * transferred copies. The worker runs weightStatsIn and the kernels' glue from their own source text (and the
 * compiled module, posted to it), so there is no separate worker bundle to ship or to find.
 */
import { Worker } from 'node:worker_threads';
import * as os from 'node:os';
import type { SharedFloat32 } from '../graph/graph';
import type { WeightStats } from '../types';
import { statsLayout, weightStats, weightStatsIn, type StatsLayout } from './stats';
import { kernelMemoryOf, kernelsModule, kernelWeightStats, SCRATCH_BYTES, wasmWeightStats, type WasmMemory } from './wasm-kernels';

export interface StatsJob {
  shape: number[];
  channelAxis: number | null;
  groups: number;
  count: number;
  /** fresh data the worker may own */
  read(): Float32Array;
  /** data valid until the next peek (local computation) */
  peek(): Float32Array;
  /** the data in shared memory, when it is there: the worker reads it without a copy */
  shared?(): SharedFloat32 | null;
}

interface QueuedJob {
  shared: SharedFloat32;
  /** index into the message's kernel memories when the data sits in one (-1: JavaScript) */
  memory: number;
  layout: StatsLayout;
}

interface WorkerJob {
  /** owned data (transferred) */
  data: Float32Array;
  layout: StatsLayout;
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const weightStatsIn = ${weightStatsIn.toString()};
const wasmWeightStats = ${wasmWeightStats.toString()};
let scratch = new ArrayBuffer(0);
function view(s) {
  if (s.byteOffset % 4 === 0) return new Float32Array(s.buffer, s.byteOffset, s.length);
  if (scratch.byteLength < s.length * 4) scratch = new ArrayBuffer(s.length * 4);
  new Uint8Array(scratch, 0, s.length * 4).set(new Uint8Array(s.buffer, s.byteOffset, s.length * 4));
  return new Float32Array(scratch, 0, s.length);
}
parentPort.on('message', (m) => {
  // tensors in shared memory: take them one at a time from the queue the calling thread also takes from
  // the statistics kernels on each kernel memory, with this thread's scratch area
  const kernels = m.memories.map((memory) => {
    const e = new WebAssembly.Instance(m.module, { env: { memory } }).exports;
    return { k: e, buffer: memory.buffer };
  });
  const out = [];
  for (;;) {
    const k = Atomics.add(m.next, 0, 1);
    if (k >= m.queue.length) break;
    const j = m.queue[k];
    const w = j.memory >= 0 ? kernels[j.memory] : null;
    const fast = w ? wasmWeightStats(w.k, w.buffer, j.shared.byteOffset, j.shared.length, j.layout, m.scratch) : null;
    out.push([k, fast ?? weightStatsIn(view(j.shared), j.layout)]);
  }
  // tensors it owns (transferred copies)
  const owned = m.owned.map((j) => weightStatsIn(j.data, j.layout));
  parentPort.postMessage({ queued: out, owned });
});
`;

const layoutOf = (j: StatsJob) => statsLayout(j.shape, j.channelAxis, j.groups, j.count);

/** statistics on the calling thread: the kernels when the data sits in a kernel memory, else JavaScript */
function localStats(j: StatsJob, shared: SharedFloat32 | undefined): WeightStats {
  const fast = shared ? kernelWeightStats(shared.buffer, shared.byteOffset, shared.length, j.shape, j.channelAxis, j.groups) : null;
  return fast ?? weightStats(j.peek(), j.shape, j.channelAxis, j.groups);
}

/** below this many elements a worker costs more than it saves */
export const PARALLEL_THRESHOLD = 4_000_000;

/**
 * Tensors in shared memory (large ONNX files are read into a SharedArrayBuffer) go into one queue, largest
 * first, that both threads take from through an atomic counter: the worker joins when it has started and
 * neither thread waits for the other while work is left. Other tensors: the calling thread computes them,
 * except when nothing is shared, where about half of the bytes (largest first) are copied to the worker.
 * `meanwhile` runs on the calling thread right after the worker was given its work.
 */
export async function statsParallel(jobs: StatsJob[], minElements = PARALLEL_THRESHOLD, meanwhile?: () => void): Promise<WeightStats[]> {
  const total = jobs.reduce((s, j) => s + j.count, 0);
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  if (total < minElements || cores < 2) {
    meanwhile?.();
    return jobs.map((j) => localStats(j, j.shared?.() ?? undefined));
  }
  const order = jobs.map((_, i) => i).sort((a, b) => jobs[b].count - jobs[a].count);
  const sharedOf = new Map<number, SharedFloat32>();
  for (const i of order) {
    const sh = jobs[i].shared?.();
    if (sh) sharedOf.set(i, sh);
  }
  const queued = order.filter((i) => sharedOf.has(i));
  const module = kernelsModule();
  const memories: WasmMemory[] = [];
  const memoryIndex = (sh: SharedFloat32): number => {
    const mem = module ? kernelMemoryOf(sh.buffer) : null;
    if (!mem) return -1;
    if (!memories.includes(mem)) memories.push(mem);
    return memories.indexOf(mem);
  };
  const rest = order.filter((i) => !sharedOf.has(i));
  // nothing shared: hand the worker about half of the bytes as transferred copies
  const owned: number[] = [];
  if (queued.length === 0) {
    let ownedCount = 0;
    let localCount = 0;
    for (const i of rest) {
      if (ownedCount <= localCount) {
        owned.push(i);
        ownedCount += jobs[i].count;
      } else localCount += jobs[i].count;
    }
  }
  const local = rest.filter((i) => !owned.includes(i));
  const next = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  try {
    const queue: QueuedJob[] = queued.map((i) => {
      const shared = sharedOf.get(i) as SharedFloat32;
      return { shared, memory: memoryIndex(shared), layout: layoutOf(jobs[i]) };
    });
    const ownedPayload: WorkerJob[] = owned.map((i) => ({ data: jobs[i].read(), layout: layoutOf(jobs[i]) }));
    const done = new Promise<{ queued: [number, WeightStats][]; owned: WeightStats[] }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`statistics worker exited with code ${code}`)));
    });
    worker.postMessage(
      { next, queue, owned: ownedPayload, module: memories.length ? module : null, memories, scratch: SCRATCH_BYTES },
      ownedPayload.map((p) => p.data.buffer as ArrayBuffer),
    );
    // other work of the caller runs while the worker starts and takes the first tensors
    meanwhile?.();
    const results = new Array<WeightStats>(jobs.length);
    for (;;) {
      const k = Atomics.add(next, 0, 1);
      if (k >= queued.length) break;
      const i = queued[k];
      results[i] = localStats(jobs[i], sharedOf.get(i));
    }
    for (const i of local) results[i] = weightStats(jobs[i].peek(), jobs[i].shape, jobs[i].channelAxis, jobs[i].groups);
    const fromWorker = await done;
    for (const [k, st] of fromWorker.queued) results[queued[k]] = st;
    owned.forEach((i, k) => (results[i] = fromWorker.owned[k]));
    return results;
  } finally {
    await worker.terminate();
  }
}
