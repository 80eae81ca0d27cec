// Public API of the Avro codec: what the worker, the CLI and the tests import.

export {
  AvroCodec,
  type AvroCodecOptions,
  AvroDecoder,
  type AvroDecoderOptions,
  AvroEncoder,
  type SchemaSource,
  type WriterInfo,
} from './avro-codec.ts';
export { type AvroSchemaInput, type AvroType, parseAvroSchema, schemaText } from './avro-types.ts';
export {
  type CompatibilityMode,
  compareSchemas,
  discoverCompatibility,
  type EnsureOptions,
  ensureSchema,
  explainIncompatibility,
  type SchemaCheck,
  type SchemaVerdict,
  testSchema,
} from './compatibility.ts';
export { type Decoder, decodeValue, encodeValue, jsonDecoder, taggedJsonDecoder } from './decoder.ts';
export {
  CODEC_ERRORS,
  CodecError,
  type CodecErrorCode,
  IncompatibleSchemaError,
  isCodecError,
  RegistryError,
} from './errors.ts';
export {
  COMPATIBILITY_LEVELS,
  type CompatibilityLevel,
  type CompatibilityVerdict,
  RegistryClient,
  type RegistryConfig,
  type RegistryRetry,
  type SchemaText,
  type SubjectVersion,
} from './registry.ts';
export {
  parseSubjectStrategy,
  recordFullName,
  SUBJECT_STRATEGIES,
  type SubjectInput,
  type SubjectKind,
  type SubjectStrategy,
  subjectName,
} from './subjects.ts';
export { frame, HEADER_SIZE, MAGIC_BYTE, peekSchemaId, readSchemaId, writeHeader } from './wire.ts';
