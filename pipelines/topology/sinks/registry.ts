// Every sink kind, listed once.
import { clickhouse } from './clickhouse.ts';
import { kafka } from './kafka.ts';
import type { SinkSpec } from './sink.ts';

export const sinks = [clickhouse, kafka] as const;

export const sinksByKind: ReadonlyMap<string, SinkSpec> = new Map(sinks.map((s) => [s.kind, s as unknown as SinkSpec]));
