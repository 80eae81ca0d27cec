// The load generator's encoder over an in-memory registry: OrderPlaced with a channel goes out as v2, under the
// subject of v1 (a compatible version 2), everything else as before.
import {
  AvroCodec,
  AvroDecoder,
  compareSchemas,
  parseAvroSchema,
  RegistryClient,
} from '../../pipelines/codec/index.ts';
import { type OrderEvent, type OrderPlaced, orderLifecycleStream, readSchema } from '../../pipelines/loadgen/orders.ts';
import { orderEventEncoder } from '../../pipelines/loadgen/produce.ts';

/** Just what registering and reading back take, on the ccompat paths, the global level NONE (Apicurio's default). */
function memoryRegistry() {
  const subjects = new Map<string, Array<{ id: number; schema: string }>>();
  const byId = new Map<number, string>();
  const reply = (status: number, body: unknown) => new Response(JSON.stringify(body), { status });
  const fetch = (async (url: string, init: RequestInit) => {
    const path = decodeURIComponent(new URL(url).pathname.replace('/apis/ccompat/v7', ''));
    const body = init.body ? (JSON.parse(init.body as string) as { schema: string }) : undefined;
    const method = init.method ?? 'GET';
    const id = path.match(/^\/schemas\/ids\/(\d+)$/)?.[1];
    const register = path.match(/^\/subjects\/([^/]+)\/versions$/)?.[1];
    const lookup = path.match(/^\/subjects\/([^/]+)$/)?.[1];
    if (method === 'GET' && path === '/config') return reply(200, { compatibilityLevel: 'NONE' });
    if (method === 'GET' && path.startsWith('/config/')) return reply(404, { error_code: 40401, message: 'no' });
    if (method === 'GET' && id !== undefined) {
      const schema = byId.get(Number(id));
      return schema ? reply(200, { schema }) : reply(404, { error_code: 40403, message: 'not found' });
    }
    if (method === 'POST' && register !== undefined) {
      const versions = subjects.get(register) ?? [];
      const next = byId.size + 1;
      byId.set(next, body!.schema);
      versions.push({ id: next, schema: body!.schema });
      subjects.set(register, versions);
      return reply(200, { id: next });
    }
    if (method === 'POST' && lookup !== undefined) {
      const versions = subjects.get(lookup) ?? [];
      const i = versions.findIndex((v) => v.schema === body!.schema);
      if (i < 0) return reply(404, { error_code: 40403, message: 'not found' });
      return reply(200, { subject: lookup, version: i + 1, id: versions[i]!.id, schema: versions[i]!.schema });
    }
    throw new Error(`memory registry: ${method} ${path} not handled`);
  }) as unknown as typeof globalThis.fetch;
  return { registry: new RegistryClient({ url: 'http://registry.test/apis/ccompat/v7' }, { fetch }), subjects };
}

test('an OrderPlaced with a channel is written with v2, version 2 of the same subject; the rest as before', async () => {
  const { registry, subjects } = memoryRegistry();
  const encode = await orderEventEncoder(new AvroCodec({ registry }), 'orders');
  const subject = 'orders-com.orders.events.OrderPlaced';
  expect(subjects.get(subject)?.map((v) => JSON.parse(v.schema).doc)).toEqual([
    'An order was placed (v1).',
    'An order was placed (v2: adds the optional channel).',
  ]);
  const [v1Id, v2Id] = subjects.get(subject)!.map((v) => v.id);

  const events = [...orderLifecycleStream(20, { seed: 4 })];
  const placed = events.find((e): e is OrderPlaced => e.eventType === 'OrderPlaced')!;
  const web: OrderPlaced = { ...placed, data: { ...placed.data, channel: 'web' } };
  const none: OrderPlaced = { ...placed, data: { ...placed.data, channel: null } };
  expect(encode(placed).readInt32BE(1)).toBe(v1Id);
  expect(encode(web).readInt32BE(1)).toBe(v2Id);
  expect(encode(none).readInt32BE(1)).toBe(v2Id);

  // Read as the topologies do, through v2: v1 gets the default, v2 keeps its channel.
  const decoder = new AvroDecoder({ registry, readers: [readSchema('OrderPlacedV2'), ...otherReaders()] });
  const all: OrderEvent[] = [...events, web];
  const bytes = all.map(encode);
  await decoder.prepare(bytes);
  const read = bytes.map((b) => decoder.decode(b) as OrderEvent);
  expect((read.at(-1) as OrderPlaced).data.channel).toBe('web');
  expect((read[0] as OrderPlaced).data.channel).toBeNull();
  expect(read.map((e) => e.eventId)).toEqual(all.map((e) => e.eventId));
});

test('v2 of OrderPlaced is compatible with v1 both ways, so BACKWARD and FULL subjects take it', () => {
  const v1 = parseAvroSchema(readSchema('OrderPlaced'));
  const v2 = parseAvroSchema(readSchema('OrderPlacedV2'));
  expect(compareSchemas(v2, v1, 'FULL_TRANSITIVE', 'v1')).toEqual([]);
});

const otherReaders = () => (['PaymentCaptured', 'OrderShipped', 'OrderCancelled'] as const).map((n) => readSchema(n));
