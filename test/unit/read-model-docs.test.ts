// The read-model queries that the kill -9 test compares with SQL over the raw events are the ones
// pipelines/sinks/clickhouse/README.md gives its readers, word for word.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QUERIES } from '../integration/read-models.ts';

const DOC = join(__dirname, '..', '..', 'pipelines', 'sinks', 'clickhouse', 'README.md');

test.each(Object.entries(QUERIES))('the %s query is documented as the test runs it', (_, sql) => {
  const blocks = [...readFileSync(DOC, 'utf8').matchAll(/```sql\n([\s\S]*?)\n```/g)].map((m) => m[1]);
  expect(blocks).toContain(sql);
});
