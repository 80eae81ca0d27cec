// Confluent wire format: magic byte 0, schema id as a 4-byte big-endian int, then the Avro binary body.

import { CodecError } from './errors.ts';

export const MAGIC_BYTE = 0;
export const HEADER_SIZE = 5;

/** The schema id of a framed message; throws a typed, non-retriable error when the header is not there. */
export function readSchemaId(buffer: Buffer): number {
  if (buffer.length < HEADER_SIZE) {
    throw new CodecError('TRUNCATED_MESSAGE', `message of ${buffer.length} bytes has no wire-format header`);
  }
  if (buffer[0] !== MAGIC_BYTE) {
    throw new CodecError('UNKNOWN_MAGIC_BYTE', `message starts with magic byte ${buffer[0]}, expected ${MAGIC_BYTE}`);
  }
  return buffer.readInt32BE(1);
}

/** The schema id, or undefined when the header is missing (used where bad messages are only skipped). */
export function peekSchemaId(buffer: Buffer | null | undefined): number | undefined {
  if (!buffer || buffer.length < HEADER_SIZE || buffer[0] !== MAGIC_BYTE) return undefined;
  return buffer.readInt32BE(1);
}

export function writeHeader(target: Buffer, schemaId: number, offset = 0): void {
  target[offset] = MAGIC_BYTE;
  target.writeInt32BE(schemaId, offset + 1);
}

/** Frames an already-encoded Avro body (one copy). */
export function frame(schemaId: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + body.length);
  writeHeader(out, schemaId);
  body.copy(out, HEADER_SIZE);
  return out;
}
