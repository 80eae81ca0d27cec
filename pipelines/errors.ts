// The one error shape of the runtime: a stable `code`, whether trying again can help (`retriable`), and the
// `cause` it was classified from. Failures are classified once, where they enter (the Kafka client, a sink, the
// registry), and the retry policy reads the flag; nothing downstream matches messages. Its message is written
// for the user: the CLI prints it as one line.

export class PipelinesError extends Error {
  override name = 'PipelinesError';
  readonly code: string;
  readonly retriable: boolean;
  readonly userFacing = true;

  constructor(code: string, message: string, o: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.code = code;
    this.retriable = o.retriable ?? false;
  }
}
