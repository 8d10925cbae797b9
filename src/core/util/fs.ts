import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Writes `data` to `target` atomically: a temp file in the same folder, fsync, then rename over the target.
 * On any failure the temp file is removed and the target is untouched.
 */
export async function writeFileAtomic(target: string, data: Uint8Array): Promise<void> {
  const dir = path.dirname(path.resolve(target));
  const tmp = path.join(dir, `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(tmp, 'wx');
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fsp.rename(tmp, target);
  } catch (err) {
    if (handle) await handle.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** One readable line for an fs error (ENOENT, EACCES, EISDIR ...) without a stack. */
export function describeFsError(err: unknown, file: string): string {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOENT':
      return `no such file: ${file}`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied: ${file}`;
    case 'EISDIR':
      return `is a folder, not a model file: ${file}`;
    case 'ENOSPC':
      return `no space left on the device while writing ${file}`;
    default:
      return `cannot access ${file}: ${e?.message ?? String(err)}`;
  }
}
