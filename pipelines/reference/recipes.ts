// The reference's recipes: each is a topology in topologies/ with its tests, quoted from the files themselves
// (steps, sinks and a test case picked by id or name), so that a recipe cannot drift from what runs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isScalar, parseDocument, type Scalar, type YAMLMap, type YAMLSeq } from 'yaml';

const TOPOLOGIES = join(import.meta.dirname, '../../topologies');

interface Recipe {
  title: string;
  /** A topology file in topologies/ (its tests beside it). */
  file: string;
  text: string;
  /** Parts of `spec` quoted: `source`, `steps.<id>`, `sinks.<id>`. */
  quote: string[];
  /** The name of the test case shown after the topology. */
  testCase: string;
}

const recipes: Recipe[] = [
  {
    title: 'Per-line analytics: explode, enrich, aggregate',
    file: 'category-revenue.yaml',
    text:
      '`explode` turns each order into one record per line, with the order still in scope; `enrich` joins each ' +
      'line with its product (a missing product counts under a default category); `aggregate` sums per hour and ' +
      'category. `emit: perBatch` writes partial sums that a SummingMergeTree adds up, so the worker keeps no ' +
      'window state and a late line is one more partial.',
    quote: ['steps.lines', 'steps.product', 'steps.category-hours', 'sinks.0'],
    testCase: "each line's revenue goes to its product's category, per hour",
  },
  {
    title: 'A current-state read model: fold',
    file: 'order-status.yaml',
    text:
      'A `fold` keeps one state per order, one handler per event type; each handler sees `state` (before the ' +
      'event) and the typed `event`. The state after each event leaves the step, here to a compacted topic keyed ' +
      'by order: the topic is the read model, and the state is rebuilt from the changelog on restart. A test ' +
      'can assert on the state itself (`expect.state`).',
    quote: ['steps.order-state', 'sinks.0'],
    testCase: 'the fold holds the current state of each order',
  },
  {
    title: 'Routing to several sinks',
    file: 'fraud-watch.yaml',
    text:
      'Every sink takes the records of one step (`from`, default the last one) for which its `when` holds. Here ' +
      'the flagged orders go to a review topic in a new Avro schema, and every screened order to ClickHouse. ' +
      'Fields of the schema are checked at validate against what the step produces.',
    quote: ['steps.screened', 'sinks.alerts', 'sinks.screened-orders'],
    testCase: 'a big consumer order is flagged to the review topic; every order is screened into ClickHouse',
  },
  {
    title: 'A window by segment with any number of workers: repartition',
    file: 'order-totals.yaml',
    text:
      'The orders topic is keyed by order, so the orders of one segment sit on every partition, and a final ' +
      '(`emit: onClose`) window per segment computed by each worker would be partial. `repartition` keys them by ' +
      'segment: on Kafka they go through an internal topic that the steps after it read as a group of their own, ' +
      'so each segment is windowed on one worker (exactly once by default). A late order updates its closed ' +
      'minute, and the ReplacingMergeTree keeps the row with the most orders.',
    quote: ['steps.by-segment', 'steps.segment-minutes', 'sinks.0'],
    testCase: 'a late order within the allowed lateness updates its closed minute',
  },
  {
    title: 'Orders, payments and shipments on three topics: sources and join',
    file: 'order-timeline.yaml',
    text:
      'Each topic is a source: `spec.source` and the named ones under `spec.sources`, each with its schemas and ' +
      'event time. A `join` pairs the records of its flow with those of `with` that share the key `on` and lie ' +
      'within `within` of each other in event time; `type: left` also lets each order that met no payment go on, ' +
      'with `payment` null, once the watermark passes the end of its window. On Kafka both flows go, keyed by ' +
      'order, through one internal topic that the join reads, so the three topics need not have the same ' +
      'partitions, and the join is right with any number of workers.',
    quote: ['sources', 'steps.paid', 'steps.shipped', 'steps.timeline'],
    testCase: 'an order paid and shipped gets one row with both; one never paid gets its row with the payment null',
  },
  {
    title: 'A late-data policy',
    file: 'order-lifecycle.yaml',
    text:
      'The watermark trails the largest event time by `source.maxOutOfOrderness`; a day closes when it passes the ' +
      "day's end (`emit: onClose`, one final row). Records up to `allowedLateness` after that update the day (a " +
      'new row, which the ReplacingMergeTree keeps); later ones go to the dead letters as `LateEvent` ' +
      '(`onLate: deadLetter`; `drop` only counts them).',
    quote: ['source', 'steps.daily'],
    testCase: 'a shipment within 2 days after its day closed updates the day; a later one is dead-lettered',
  },
  {
    title: 'Schema evolution from v1 to v2',
    file: 'order-enrichment.yaml',
    text:
      'The source names the newest version of each event schema as its reader schema. OrderPlaced v2 adds ' +
      '`channel` with a default (`null`): a BACKWARD compatible change. The worker decodes each record with the ' +
      'schema it was written with (its id, from the registry) resolved to the reader, so v1 records, interleaved ' +
      'with v2 on one topic, read as `channel: null` (test/integration/worker-enrichment.test.ts runs that on ' +
      'Kafka and the registry); the test case below gives the event as v1 writes it, without `channel`. The ' +
      'worker checks its output schemas against the registry at start; `pipelines schemas check` checks a ' +
      'change before it ships.',
    quote: ['source'],
    testCase: 'a v1 OrderPlaced (no channel) reads as channel null; an unknown product keeps its defaults',
  },
];

/** Whole lines of `text` from offset `from` to `to`, dedented by `by` spaces. */
function lines(text: string, from: number, to: number, by: number): string {
  const start = text.lastIndexOf('\n', from - 1) + 1;
  const end = text.indexOf('\n', to - 1);
  return text
    .slice(start, end < 0 ? undefined : end)
    .trimEnd()
    .split('\n')
    .map((l) => l.slice(Math.min(by, l.length - l.trimStart().length)))
    .join('\n');
}

/** A list item of `seq` by its id (a step's sits beside its kind, a sink's inside its config) or index. */
function item(seq: YAMLSeq, id: string): YAMLMap | undefined {
  if (/^\d+$/.test(id)) return seq.items[Number(id)] as YAMLMap;
  const json = seq.toJSON() as Record<string, unknown>[];
  const i = json.findIndex(
    (v) => v.id === id || Object.values(v).some((c) => (c as { id?: string } | null)?.id === id),
  );
  return i < 0 ? undefined : (seq.items[i] as YAMLMap);
}

/** The parts of a topology's spec as written (flow maps, comments and all), under their keys. */
function quoteSpec(text: string, parts: string[], where: string): string {
  const spec = parseDocument(text).getIn(['spec'], true) as YAMLMap;
  const out: string[] = [];
  for (const key of ['source', 'sources', 'steps', 'sinks']) {
    const pair = spec.items.find((p) => isScalar(p.key) && p.key.value === key);
    const mine = parts.filter((q) => q === key || q.startsWith(`${key}.`));
    if (!pair || mine.length === 0) continue;
    const range = (n: { range?: [number, number, number] | null }) => n.range ?? [0, 0, 0];
    if (mine.includes(key)) {
      out.push(lines(text, range(pair.key as Scalar)[0], range(pair.value as YAMLMap)[1], 2));
      continue;
    }
    out.push(`${key}:`);
    for (const q of mine) {
      const node = item(pair.value as YAMLSeq, q.slice(key.length + 1));
      if (!node) throw new Error(`recipe quotes spec.${q}, which ${where} does not have`);
      out.push(lines(text, range(node)[0], range(node)[1], 2));
    }
  }
  return out.join('\n');
}

function yamlBlock(text: string): string {
  return `\`\`\`yaml\n${text}\n\`\`\``;
}

/** The `## Recipes` section of the reference. */
export function recipesSection(): string {
  const out = [
    '## Recipes\n',
    'Each recipe is a topology in `topologies/` with its test file; the parts below are quoted from them ' +
      '(`pipelines test` runs them, as does the suite).\n',
  ];
  for (const r of recipes) {
    const tests = r.file.replace(/\.yaml$/, '.test.yaml');
    const testText = readFileSync(join(TOPOLOGIES, tests), 'utf8');
    const cases = parseDocument(testText).getIn(['cases'], true) as YAMLSeq;
    const testCase = cases.items.find((c) => (c as YAMLMap).get('name') === r.testCase) as YAMLMap | undefined;
    if (!testCase?.range) throw new Error(`recipe '${r.title}': no test case '${r.testCase}' in ${tests}`);
    out.push(
      `### ${r.title}\n`,
      `${r.text} From [\`${r.file}\`](${r.file}):\n`,
      yamlBlock(quoteSpec(readFileSync(join(TOPOLOGIES, r.file), 'utf8'), r.quote, r.file)),
      `\nIts test, from [\`${tests}\`](${tests}):\n`,
      yamlBlock(lines(testText, testCase.range[0], testCase.range[1], 2)),
      '',
    );
  }
  return out.join('\n');
}
