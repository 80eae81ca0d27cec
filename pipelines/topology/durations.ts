// Durations in topology files: `250ms`, `10s`, `1m`, `1h30m`, `7d`; as zod schemas that parse to milliseconds.
import { z } from 'zod';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const DURATION = /^(\d+(ms|s|m|h|d|w))+$/;

export function parseDuration(s: string): number {
  let total = 0;
  for (const m of s.matchAll(/(\d+)(ms|s|m|h|d|w)/g)) total += Number(m[1]) * UNITS[m[2]!]!;
  return total;
}

export function formatDuration(ms: number): string {
  for (const [u, n] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= n && ms % n === 0) return `${ms / n}${u}`;
  }
  return `${ms}ms`;
}

export const duration = () =>
  z
    .string()
    .regex(DURATION, 'expected a duration such as 500ms, 10s, 1m, 2h, 7d')
    .transform(parseDuration)
    .meta({ examples: ['500ms', '1m', '7d'] });

export const durationRange = () =>
  z
    .string()
    .regex(/^\d+(ms|s|m|h|d)\.\.\d+(ms|s|m|h|d)$/, 'expected a range such as 100ms..10s')
    .transform((s) => {
      const [a, b] = s.split('..') as [string, string];
      return { min: parseDuration(a), max: parseDuration(b) };
    })
    .meta({ examples: ['100ms..10s'] });

export const identifier = () =>
  z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an identifier (letters, digits, _; not starting with a digit)');

export const expression = (what: string) => z.string().min(1).describe(`CEL expression: ${what}`);
