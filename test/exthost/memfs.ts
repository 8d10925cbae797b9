// A minimal in-memory FileSystemProvider for tests of non-`file:` workspaces (virtual file systems): the
// extension must read and write such models through vscode.workspace.fs only.
import * as path from 'node:path';
import * as vscode from 'vscode';

export class MemFs implements vscode.FileSystemProvider {
  private readonly files = new Map<string, { data: Uint8Array; mtime: number }>();
  private readonly emitter = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.emitter.event;

  put(p: string, data: Uint8Array): void {
    this.files.set(p, { data: new Uint8Array(data), mtime: Date.now() });
  }

  has(p: string): boolean {
    return this.files.has(p);
  }

  get(p: string): Uint8Array {
    const f = this.files.get(p);
    if (!f) throw new Error(`memfs: no ${p}`);
    return f.data;
  }

  private isDir(p: string): boolean {
    const prefix = p.endsWith('/') ? p : `${p}/`;
    return [...this.files.keys()].some((k) => k.startsWith(prefix));
  }

  watch(): vscode.Disposable {
    return new vscode.Disposable(() => undefined);
  }

  stat(uri: vscode.Uri): vscode.FileStat {
    const f = this.files.get(uri.path);
    if (f) return { type: vscode.FileType.File, ctime: f.mtime, mtime: f.mtime, size: f.data.byteLength };
    if (uri.path === '/' || this.isDir(uri.path)) return { type: vscode.FileType.Directory, ctime: 0, mtime: 0, size: 0 };
    throw vscode.FileSystemError.FileNotFound(uri);
  }

  readDirectory(uri: vscode.Uri): [string, vscode.FileType][] {
    const prefix = uri.path.endsWith('/') ? uri.path : `${uri.path}/`;
    const out = new Map<string, vscode.FileType>();
    for (const k of this.files.keys()) {
      if (!k.startsWith(prefix)) continue;
      const rest = k.slice(prefix.length);
      const [first, ...more] = rest.split('/');
      if (first) out.set(first, more.length ? vscode.FileType.Directory : vscode.FileType.File);
    }
    return [...out];
  }

  createDirectory(): void {
    // folders exist implicitly
  }

  readFile(uri: vscode.Uri): Uint8Array {
    const f = this.files.get(uri.path);
    if (!f) throw vscode.FileSystemError.FileNotFound(uri);
    return f.data;
  }

  writeFile(uri: vscode.Uri, content: Uint8Array): void {
    this.put(uri.path, content);
    this.emitter.fire([{ type: vscode.FileChangeType.Changed, uri }]);
  }

  delete(uri: vscode.Uri): void {
    this.files.delete(uri.path);
  }

  rename(oldUri: vscode.Uri, newUri: vscode.Uri): void {
    const f = this.files.get(oldUri.path);
    if (!f) throw vscode.FileSystemError.FileNotFound(oldUri);
    this.files.delete(oldUri.path);
    this.files.set(path.posix.normalize(newUri.path), f);
  }
}
