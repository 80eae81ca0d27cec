// The ladder's topologies (test/bench/ladder.ts), each a rung's work on the pre-produced order topic; the latency
// benchmark (latency.ts) runs the same ones under a steady load.
import { ORDER_VALUE } from '../integration/harness.ts';

const source = (group: string, extra = '') => `apiVersion: pipelines/v1
kind: Topology
metadata: { name: ${group} }
spec:
  source:
    topic: \${ORDERS_TOPIC}
    group: ${group}
    value: ${ORDER_VALUE}
    eventTime: event.timestamp
    maxOutOfOrderness: 5s
  tables:
    customers: { topic: "\${CUSTOMERS_TOPIC}", key: customerId, schema: schemas/Customer.avsc }
${extra}`;

const L2_STEPS = `    - id: placed
      filter: event.eventType == 'OrderPlaced'
    - id: customer
      enrich: { table: customers, key: event.data.customerId, as: customer, onMissing: keep, defaults: { segment: "'unknown'" } }
    - id: totals
      map: { orderId: event.data.orderId, segment: customer.segment, amount: event.data.totalAmount, items: size(event.data.items), at: event.timestamp }
`;
// Records dropped after the rung's work: the sink is there for a valid topology, and never written.
const DROP = `    - id: drop
      filter: "false"
`;
const sink = (exactlyOnce: boolean, key = 'orderId') => `  sinks:
    - kafka: { topic: "\${TOTALS_TOPIC}", key: ${key}, value: { format: json }${exactlyOnce ? ', exactlyOnce: true' : ''} }
  errors: { deadLetter: "\${DLQ_TOPIC}" }
`;

export const TOPOLOGIES: Record<string, string> = {
  L1: source('ladder-l1', `  steps:\n    - id: drop\n      filter: event.eventType == ''\n${sink(false, 'key')}`),
  L2: source('ladder-l2', `  steps:\n${L2_STEPS}${DROP}${sink(false)}`),
  L3: source(
    'ladder-l3',
    `  steps:
${L2_STEPS}    - id: per-order
      aggregate:
        window: { tumbling: 1000s, on: at, allowedLateness: 1m }
        groupBy: [orderId]
        measures: { events: count(), amount: sum(amount) }
${DROP}${sink(false)}`,
  ),
  'L4 at least once': source('ladder-l4', `  steps:\n${L2_STEPS}${sink(false)}`),
  'L4 exactly once': source('ladder-l4x', `  steps:\n${L2_STEPS}${sink(true)}`),
};
