// The memory budget (runtime/memory.ts): where it comes from, and the buffer bounds it gives.
import {
  bufferBounds,
  cgroupLimit,
  DEFAULT_BOUNDS,
  memoryBudget,
  parseBytes,
  ROW_BYTES,
} from '../../../pipelines/runtime/memory.ts';

const MiB = 1024 ** 2;

test('sizes as Kubernetes and people write them', () => {
  expect(parseBytes('512Mi')).toBe(512 * MiB);
  expect(parseBytes('2Gi')).toBe(2 * 1024 * MiB);
  expect(parseBytes('600M')).toBe(600e6);
  expect(parseBytes('1.5Gi')).toBe(1.5 * 1024 * MiB);
  expect(parseBytes('268435456')).toBe(256 * MiB);
  for (const bad of ['', 'lots', '-5Mi', '5 Zi', '0']) expect(parseBytes(bad)).toBeUndefined();
});

test('the container limit: cgroup v2, then v1; no limit is none', () => {
  const files = (m: Record<string, string>) => (p: string) => {
    if (!(p in m)) throw new Error('ENOENT');
    return m[p]!;
  };
  expect(cgroupLimit(files({ '/sys/fs/cgroup/memory.max': '536870912\n' }))).toBe(512 * MiB);
  expect(cgroupLimit(files({ '/sys/fs/cgroup/memory.max': 'max\n' }))).toBeUndefined();
  expect(cgroupLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '1073741824' }))).toBe(1024 * MiB);
  expect(cgroupLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712' }))).toBeUndefined();
  expect(cgroupLimit(files({}))).toBeUndefined();
});

test('the setting wins over the limit; a bad one is one line saying what to write', () => {
  expect(memoryBudget({ PIPELINES_MEMORY_BUDGET: '300Mi' }, () => 2048 * MiB)).toEqual({
    bytes: 300 * MiB,
    from: 'PIPELINES_MEMORY_BUDGET',
  });
  expect(memoryBudget({}, () => 2048 * MiB)).toEqual({ bytes: 2048 * MiB, from: 'cgroup' });
  expect(memoryBudget({}, () => undefined)).toBeUndefined();
  expect(() => memoryBudget({ PIPELINES_MEMORY_BUDGET: '16Mi' }, () => undefined)).toThrow(
    /PIPELINES_MEMORY_BUDGET: '16Mi' is not a size of at least 64Mi: write .*512Mi/,
  );
});

test('bounds shrink with the budget and the stages sharing it, within the defaults and a floor', () => {
  expect(bufferBounds(undefined, 3, 1)).toEqual(DEFAULT_BOUNDS);
  // A 2 GiB pod keeps the defaults the worker was tuned with, but for librdkafka's 1 GiB producer queue.
  expect(bufferBounds({ bytes: 2048 * MiB, from: 'cgroup' }, 3, 1)).toEqual({
    ...DEFAULT_BOUNDS,
    produceKbytes: Math.floor((2048 * MiB * 0.1) / 1024),
  });
  const small = bufferBounds({ bytes: 256 * MiB, from: 'cgroup' }, 4, 2);
  expect(small.prefetchKbytes).toBe(Math.floor((256 * MiB * 0.1) / 4 / 1024));
  expect(small.fetchMaxBytes).toBe(Math.floor((256 * MiB * 0.1) / 4));
  expect(small.queuedMinMessages).toBe(Math.floor((256 * MiB * 0.1) / 4 / 512));
  expect(small.maxBufferedRows).toBe(Math.floor((256 * MiB * 0.2) / 2 / ROW_BYTES));
  expect(small.produceKbytes).toBe(Math.floor((256 * MiB * 0.1) / 2 / 1024));
  // What the sink buffers may hold stays within their share of the budget.
  expect(small.maxBufferedRows * 2 * ROW_BYTES).toBeLessThanOrEqual(256 * MiB * 0.2);
  const tiny = bufferBounds({ bytes: 64 * MiB, from: 'cgroup' }, 20, 30);
  expect(tiny).toEqual({
    prefetchKbytes: 1024,
    fetchMaxBytes: MiB,
    queuedMinMessages: 1000,
    maxBufferedRows: 2000,
    produceKbytes: 4096,
  });
});
