/** An error meant for the user: its message is one clear line, never a stack trace. */
export class ModelError extends Error {
  constructor(message: string) {
    super(message.split('\n')[0]);
    this.name = 'ModelError';
  }
}
