/**
 * Zip archives (fflate) with limits: the central directory's sizes are checked before anything is inflated,
 * so oversized entries and zip bombs are refused with one line instead of exhausting memory.
 */
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { ModelError } from '../errors';

/** no single entry above this many bytes uncompressed */
export const MAX_ENTRY_BYTES = 2 ** 31 - 1;
/** no archive above this many bytes uncompressed in total */
export const MAX_TOTAL_BYTES = 8 * 2 ** 30;
/** entries that inflate more than this ratio (and are larger than BOMB_MIN_BYTES) are refused as a zip bomb */
export const MAX_RATIO = 200;
export const BOMB_MIN_BYTES = 16 * 2 ** 20;

export interface ZipEntry {
  name: string;
  bytes: Uint8Array;
}

export function zipEntries(bytes: Uint8Array, what: string, limits = { entry: MAX_ENTRY_BYTES, total: MAX_TOTAL_BYTES }): ZipEntry[] {
  let total = 0;
  let problem: string | null = null;
  const declared = new Map<string, number>();
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, {
      filter(f) {
        if (problem) return false;
        total += f.originalSize;
        if (f.originalSize > limits.entry) problem = `zip entry ${f.name} is ${f.originalSize} bytes uncompressed (limit ${limits.entry})`;
        else if (total > limits.total) problem = `zip archive is ${total}+ bytes uncompressed (limit ${limits.total})`;
        else if (f.compression !== 0 && f.originalSize > BOMB_MIN_BYTES && f.originalSize / Math.max(1, f.size) > MAX_RATIO) problem = `zip entry ${f.name} expands ${Math.round(f.originalSize / Math.max(1, f.size))}x (a zip bomb?)`;
        if (problem) return false;
        declared.set(f.name, f.originalSize);
        return true;
      },
    });
  } catch (err) {
    throw new ModelError(`${what}: not a readable zip archive (${err instanceof Error ? err.message : String(err)})`);
  }
  if (problem) throw new ModelError(`${what}: ${problem}; refused`);
  const out: ZipEntry[] = [];
  for (const [name, data] of Object.entries(files)) {
    if (declared.has(name) && data.byteLength !== declared.get(name)) throw new ModelError(`${what}: zip entry ${name} does not match its declared size; refused`);
    out.push({ name, bytes: data });
  }
  return out;
}

/** a zip archive of the entries, stored (model weights barely compress) */
export function zipBytes(entries: ZipEntry[]): Uint8Array {
  const z: Zippable = {};
  for (const e of entries) z[e.name] = [e.bytes, { level: 0 }];
  return zipSync(z, { level: 0 });
}
