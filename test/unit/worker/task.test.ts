// A partition's task cuts a fetched batch where a sink's replay range begins and ends (runtime/task.ts).
import { PartitionTask } from '../../../pipelines/runtime/task.ts';

const offsets = (from: number, to: number, skip: number[] = []) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i)
    .filter((o) => !skip.includes(o))
    .map((o) => ({ offset: String(o) }));

describe('a partition task', () => {
  it('cuts a batch at the end of a replay range, also when the next offset is a transaction marker', () => {
    for (const marker of [[], [11], [11, 12]]) {
      const task = new PartitionTask('t', 0, 0);
      task.replay('clickhouse:x', { topic: 't', partition: 0, first: '4', last: '10' });
      const admitted = task.admit(offsets(4, 20, marker), undefined, 0);
      if (admitted.kind !== 'process') throw new Error(admitted.kind);
      const pieces = admitted.segments.map((s) => [s.messages[0]!.offset, s.messages.at(-1)!.offset, [...s.skip]]);
      expect(pieces).toEqual([
        ['4', '10', []],
        [String(11 + marker.length), '20', []],
      ]);
    }
  });

  it('skips the sink for the records before its range, and cuts where the range begins', () => {
    const task = new PartitionTask('t', 0, 0);
    task.replay('clickhouse:x', { topic: 't', partition: 0, first: '6', last: '8' });
    const admitted = task.admit(offsets(2, 12, [6]), undefined, 0);
    if (admitted.kind !== 'process') throw new Error(admitted.kind);
    expect(admitted.segments.map((s) => [s.messages[0]!.offset, s.messages.at(-1)!.offset, [...s.skip]])).toEqual([
      ['2', '5', ['clickhouse:x']],
      ['7', '8', []],
      ['9', '12', []],
    ]);
  });
});
