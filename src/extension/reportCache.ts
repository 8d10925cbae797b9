import * as vscode from 'vscode';
import * as core from '../core/api';
import type { InspectReport } from '../core/types';
import { dimsKey } from '../protocol/dims';
import type { InputDimsStore } from './inputDims';
import { baseName, loadModelFromUri } from './loading';
import { runWithProgress } from './progress';

interface Entry {
  key: string;
  report: Promise<InspectReport>;
}

const MAX_ENTRIES = 32;

/**
 * InspectReports of model files on disk for the explorer, keyed by uri + mtime + size + input dims. Only
 * reports are kept (the Model is dropped after inspect), in LRU order.
 */
export class ReportCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly dims: InputDimsStore) {}

  async get(uri: vscode.Uri): Promise<InspectReport> {
    const stat = await vscode.workspace.fs.stat(uri);
    const id = uri.toString();
    const dims = this.dims.get(uri);
    const key = `${stat.mtime}:${stat.size}:${dimsKey(dims)}`;
    const hit = this.entries.get(id);
    if (hit && hit.key === key) {
      this.entries.delete(id); // refresh LRU position
      this.entries.set(id, hit);
      return hit.report;
    }
    const report = runWithProgress({ title: `Inspecting ${baseName(uri)}…`, location: 'window', cancellable: false }, async () =>
      core.inspectAsync(await loadModelFromUri(uri), { dims }),
    );
    const entry: Entry = { key, report };
    this.entries.delete(id);
    this.entries.set(id, entry);
    report.catch(() => {
      if (this.entries.get(id) === entry) this.entries.delete(id);
    });
    while (this.entries.size > MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return report;
  }

  invalidate(uri?: vscode.Uri): void {
    if (uri) this.entries.delete(uri.toString());
    else this.entries.clear();
  }
}
