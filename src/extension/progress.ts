import * as vscode from 'vscode';
import { CancelledError } from './errors';

export interface ProgressOptions {
  title: string;
  /** a cancellable notification (long work) or the quiet status-bar spinner */
  location: 'notification' | 'window';
  cancellable: boolean;
  /** a second cancellation source (e.g. a Cancel button in the webview) */
  signal?: AbortSignal;
  /**
   * With location 'notification': show only the status-bar spinner at first and the (cancellable) notification
   * once the work has taken this long. VS Code keeps a progress notification on screen for at least 800 ms, so
   * work that is usually quick would otherwise leave it standing after the result is shown.
   */
  notifyAfterMs?: number;
}

/** Resolve after the timers queued so far have run (one macrotask turn, unlike setImmediate). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise<void>((resolve) => setTimeout(resolve, 0));
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
  if (opts.location === 'notification' && opts.notifyAfterMs !== undefined) return runEscalating(opts, opts.notifyAfterMs, work);
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
        // Let the progress reach the workbench before (possibly synchronous) work blocks this thread: the
        // extension host flushes its RPC messages from a 0 ms timer queued when withProgress started, and timers
        // run in order, so our own 0 ms timer fires after that flush.
        await yieldToEventLoop();
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

/** Status-bar progress first; a cancellable notification joins only when the work is still running after `ms`. */
async function runEscalating<T>(
  opts: ProgressOptions,
  ms: number,
  work: (signal: AbortSignal, progress: vscode.Progress<{ message?: string; increment?: number }>) => Promise<T>,
): Promise<T> {
  const fromNotification = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, fromNotification.signal]) : fromNotification.signal;
  const running = runWithProgress({ title: opts.title, location: 'window', cancellable: false, signal }, work);
  const timer = setTimeout(() => {
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: opts.title, cancellable: opts.cancellable },
      (_progress, token) => {
        const sub = token.onCancellationRequested(() => fromNotification.abort());
        // the notification ends exactly when the work does
        return running.then(
          () => sub.dispose(),
          () => sub.dispose(),
        );
      },
    );
  }, ms);
  try {
    return await running;
  } finally {
    clearTimeout(timer);
  }
}
