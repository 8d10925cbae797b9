import * as vscode from 'vscode';
import { ModelError } from '../core/api';

/** Thrown (as a ModelError) when the user cancels long work. */
export class CancelledError extends ModelError {
  constructor(what: string) {
    super(`${what} was cancelled.`);
    this.name = 'CancelledError';
  }
}

export function isModelError(err: unknown): err is Error {
  return err instanceof ModelError || (err instanceof Error && err.name === 'ModelError');
}

/** One clear line for the user: a ModelError's message as is, anything else reduced to its first line. */
export function userMessage(err: unknown, context?: string): string {
  if (err instanceof CancelledError || isModelError(err)) return err.message;
  const raw = err instanceof Error ? err.message : String(err);
  const first = raw.split('\n', 1)[0]?.trim() || 'unknown error';
  return context ? `${context}: ${first}` : first;
}

/** Details (stack) go to the log. */
export function logError(log: vscode.LogOutputChannel, context: string, err: unknown): void {
  if (err instanceof CancelledError) {
    log.info(`${context}: ${err.message}`);
  } else if (isModelError(err)) {
    log.warn(`${context}: ${err.message}`);
  } else if (err instanceof Error) {
    log.error(`${context}: ${err.stack ?? err.message}`);
  } else {
    log.error(`${context}: ${String(err)}`);
  }
}

/** Log the details and show the user one clear message. */
export function reportError(log: vscode.LogOutputChannel, context: string, err: unknown): void {
  logError(log, context, err);
  if (err instanceof CancelledError) return;
  void vscode.window.showErrorMessage(userMessage(err, context));
}
