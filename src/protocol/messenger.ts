/**
 * A tiny request/reply helper over postMessage, used on both sides (no `vscode`, no DOM).
 * Requests carry a messageId, replies carry inReplyTo; everything else is an event.
 */
import type { Envelope } from './messages';

interface Pending<T> {
  resolve: (body: T) => void;
  reject: (err: Error) => void;
}

export class Messenger<TOut, TIn> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending<TIn>>();
  private disposed = false;

  constructor(
    private readonly post: (message: Envelope<TOut>) => unknown,
    /** called for every incoming message that is not a reply; `messageId` is set for requests */
    private readonly onMessage: (body: TIn, messageId: number | undefined) => void,
  ) {}

  /** Send a message that expects no reply. */
  sendEvent(body: TOut): void {
    if (this.disposed) return;
    this.post({ messageId: this.nextId++, body });
  }

  /** Send a request; resolves with the reply's body. */
  request(body: TOut): Promise<TIn> {
    if (this.disposed) return Promise.reject(new Error('The editor was closed.'));
    const messageId = this.nextId++;
    return new Promise<TIn>((resolve, reject) => {
      this.pending.set(messageId, { resolve, reject });
      this.post({ messageId, body });
    });
  }

  /** Reply to a request received with `messageId`. */
  reply(inReplyTo: number, body: TOut): void {
    if (this.disposed) return;
    this.post({ messageId: this.nextId++, inReplyTo, body });
  }

  /** Feed every received (already validated) envelope here. */
  handle(message: Envelope<TIn>): void {
    if (message.inReplyTo !== undefined) {
      const p = this.pending.get(message.inReplyTo);
      if (p) {
        this.pending.delete(message.inReplyTo);
        p.resolve(message.body);
      }
      return;
    }
    this.onMessage(message.body, message.messageId);
  }

  /** Reject outstanding requests and stop sending. */
  dispose(): void {
    this.disposed = true;
    for (const p of this.pending.values()) p.reject(new Error('The editor was closed.'));
    this.pending.clear();
  }
}
