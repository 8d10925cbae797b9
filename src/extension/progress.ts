import * as vscode from 'vscode';
import { CancelledError } from './errors';

export interface ProgressOptions {
  title: string;
  /** a cancellable notification (long work) or the quiet status-bar spinner */
  location: 'notification' | 'window';
  cancellable: boolean;
  /** a second cancellation source (e.g. a Cancel button in the webview) */
  signal?: AbortSignal;
}

/**
 * Run `work` under window.withProgress. Cancellation is surfaced as an AbortSignal (pass it on to core calls
 * that accept one); work that cannot observe the signal is abandoned: the returned promise rejects with a
 * CancelledError as soon as the user cancels.
 */
export function runWithProgress<T>(
  opts: ProgressOptions,
  work: (signal: AbortSignal, progress: vscode.Progress<{ message?: string; increment?: number }>) => Promise<T>,
): Promise<T> {
  return Promise.resolve(
    vscode.window.withProgress(
      {
        location: opts.location === 'notification' ? vscode.ProgressLocation.Notification : vscode.ProgressLocation.Window,
        title: opts.title,
        cancellable: opts.cancellable && opts.location === 'notification',
      },
      async (progress, token) => {
        const controller = new AbortController();
        let sub: vscode.Disposable | undefined;
        let onExternalAbort: (() => void) | undefined;
        const cancelled = new Promise<never>((_, reject) => {
          const cancel = (): void => {
            controller.abort();
            reject(new CancelledError(opts.title.replace(/…$/, '')));
          };
          sub = token.onCancellationRequested(cancel);
          if (opts.signal) {
            if (opts.signal.aborted) cancel();
            onExternalAbort = cancel;
            opts.signal.addEventListener('abort', cancel, { once: true });
          }
        });
        cancelled.catch(() => undefined); // handled by the race below
        // let the progress UI render before (possibly synchronous) work starts
        await new Promise<void>((resolve) => setImmediate(resolve));
        try {
          if (controller.signal.aborted) return await cancelled;
          return await Promise.race([work(controller.signal, progress), cancelled]);
        } finally {
          sub?.dispose();
          if (onExternalAbort) opts.signal?.removeEventListener('abort', onExternalAbort);
        }
      },
    ),
  );
}
