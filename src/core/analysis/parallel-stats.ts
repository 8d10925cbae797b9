/**
 * Weight statistics on two cores: a worker thread takes about half of the bytes (largest tensors first,
 * their data copied once and transferred), the calling thread computes the rest meanwhile. The worker runs
 * weightStats from its own source text, so there is no separate worker bundle to ship or to find.
 */
import { Worker } from 'node:worker_threads';
import * as os from 'node:os';
import type { SharedFloat32 } from '../graph/graph';
import type { WeightStats } from '../types';
import { weightStats } from './stats';

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

interface WorkerJob {
  /** either owned data (transferred) or a place in shared memory */
  data: Float32Array | null;
  shared: SharedFloat32 | null;
  shape: number[];
  channelAxis: number | null;
  groups: number;
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const weightStats = ${weightStats.toString()};
let scratch = new ArrayBuffer(0);
function view(s) {
  if (s.byteOffset % 4 === 0) return new Float32Array(s.buffer, s.byteOffset, s.length);
  if (scratch.byteLength < s.length * 4) scratch = new ArrayBuffer(s.length * 4);
  new Uint8Array(scratch, 0, s.length * 4).set(new Uint8Array(s.buffer, s.byteOffset, s.length * 4));
  return new Float32Array(scratch, 0, s.length);
}
parentPort.on('message', (jobs) => {
  parentPort.postMessage(jobs.map((j) => weightStats(j.data || view(j.shared), j.shape, j.channelAxis, j.groups)));
});
`;

/** below this many elements a worker costs more than it saves */
export const PARALLEL_THRESHOLD = 4_000_000;

export async function statsParallel(jobs: StatsJob[], minElements = PARALLEL_THRESHOLD): Promise<WeightStats[]> {
  const total = jobs.reduce((s, j) => s + j.count, 0);
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  if (total < minElements || cores < 2) return jobs.map((j) => weightStats(j.peek(), j.shape, j.channelAxis, j.groups));
  const order = jobs.map((_, i) => i).sort((a, b) => jobs[b].count - jobs[a].count);
  const remote: number[] = [];
  const local: number[] = [];
  let remoteCount = 0;
  let localCount = 0;
  for (const i of order) {
    if (remoteCount <= localCount) {
      remote.push(i);
      remoteCount += jobs[i].count;
    } else {
      local.push(i);
      localCount += jobs[i].count;
    }
  }
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  try {
    const payload: WorkerJob[] = remote.map((i) => {
      const shared = jobs[i].shared?.() ?? null;
      return { data: shared ? null : jobs[i].read(), shared, shape: jobs[i].shape, channelAxis: jobs[i].channelAxis, groups: jobs[i].groups };
    });
    const done = new Promise<WeightStats[]>((resolve, reject) => {
      worker.once('message', (m: WeightStats[]) => resolve(m));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`statistics worker exited with code ${code}`)));
    });
    worker.postMessage(
      payload,
      payload.flatMap((p) => (p.data ? [p.data.buffer as ArrayBuffer] : [])),
    );
    const results = new Array<WeightStats>(jobs.length);
    for (const i of local) results[i] = weightStats(jobs[i].peek(), jobs[i].shape, jobs[i].channelAxis, jobs[i].groups);
    const fromWorker = await done;
    remote.forEach((i, k) => (results[i] = fromWorker[k]));
    return results;
  } finally {
    await worker.terminate();
  }
}
