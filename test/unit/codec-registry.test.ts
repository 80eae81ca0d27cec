// Registry client over a fake fetch: retries with backoff on transient failures, typed errors, credentials kept out.

import { discoverCompatibility, RegistryClient, RegistryError } from '../../pipelines/codec/index.ts';

type Reply = { status: number; body?: unknown } | Error;

function fakeFetch(replies: Reply[]) {
  const seen: Array<{ url: string; method: string; headers: Record<string, string>; body?: string }> = [];
  const fn = (async (url: string, init: RequestInit) => {
    seen.push({
      url,
      method: init.method ?? 'GET',
      headers: init.headers as Record<string, string>,
      body: init.body as string,
    });
    const reply = replies.shift();
    if (!reply) throw new Error('no more replies');
    if (reply instanceof Error) throw reply;
    const text =
      reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    return new Response(text, { status: reply.status });
  }) as unknown as typeof fetch;
  return { fn, seen };
}

function client(replies: Reply[], config: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}) {
  const fake = fakeFetch(replies);
  const sleeps: number[] = [];
  const registry = new RegistryClient(
    {
      url: 'http://registry.test/apis/ccompat/v7/',
      retry: { initialMs: 100, maxMs: 250, maxAttempts: 4 },
      ...config,
    },
    { fetch: fake.fn, sleep: async (ms) => void sleeps.push(ms), random: () => 0.5 },
  );
  return { registry, seen: fake.seen, sleeps };
}

describe('RegistryClient', () => {
  it('fetches a schema by id, defaulting the type to AVRO', async () => {
    const { registry, seen } = client([{ status: 200, body: { schema: '"string"' } }]);
    await expect(registry.getSchemaById(7)).resolves.toEqual({
      id: 7,
      schema: '"string"',
      schemaType: 'AVRO',
      references: [],
    });
    expect(seen[0]).toMatchObject({ url: 'http://registry.test/apis/ccompat/v7/schemas/ids/7', method: 'GET' });
  });

  it('shares one request between concurrent calls for an id', async () => {
    const { registry, seen } = client([{ status: 200, body: { schema: '"int"' } }]);
    const [a, b] = await Promise.all([registry.getSchemaById(3), registry.getSchemaById(3)]);
    expect(a).toBe(b);
    expect(seen).toHaveLength(1);
  });

  it('retries 5xx, 429 and network errors with exponential backoff, then succeeds', async () => {
    const { registry, sleeps } = client([
      { status: 503, body: 'busy' },
      new TypeError('fetch failed'),
      { status: 429 },
      { status: 200, body: { schema: '"int"' } },
    ]);
    await expect(registry.getSchemaById(1)).resolves.toMatchObject({ schema: '"int"' });
    // Full jitter at 0.5: half of the ceiling, which doubles from 100 ms up to its cap (250 ms).
    expect(sleeps).toEqual([50, 100, 125]);
  });

  it('gives up with a retriable error carrying the last cause', async () => {
    const { registry } = client([new TypeError('a'), new TypeError('b'), new TypeError('c'), new TypeError('d')]);
    const error = await registry.getSchemaById(1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toMatchObject({ code: 'REGISTRY_UNAVAILABLE', retriable: true, request: 'GET /schemas/ids/1' });
    expect((error as Error).message).toMatch(/gave up after 4 attempts/);
    expect(((error as Error).cause as Error).cause).toMatchObject({ message: 'd' });
  });

  it('does not retry a 404 and exposes the registry error code', async () => {
    const { registry, seen } = client([{ status: 404, body: { message: 'Schema 9 not found.', error_code: 40403 } }]);
    const error = (await registry.getSchemaById(9).catch((e: unknown) => e)) as RegistryError;
    expect(error).toMatchObject({ status: 404, errorCode: 40403, retriable: false, notFound: true });
    expect(error.message).toBe('GET /schemas/ids/9: HTTP 404 Schema 9 not found.');
    expect(seen).toHaveLength(1);
  });

  it.each([
    [401, 'REGISTRY_UNAUTHORIZED'],
    [403, 'REGISTRY_UNAUTHORIZED'],
    [422, 'REGISTRY_REJECTED'],
  ])('maps HTTP %i to %s without retrying', async (status, code) => {
    const { registry, seen } = client([{ status, body: { message: 'no', error_code: status * 100 } }]);
    await expect(registry.getGlobalCompatibility()).rejects.toMatchObject({ code, retriable: false });
    expect(seen).toHaveLength(1);
  });

  it('maps 42201 (invalid schema) to INVALID_SCHEMA', async () => {
    const { registry } = client([{ status: 422, body: { message: 'Invalid schema', error_code: 42201 } }]);
    await expect(registry.register('s', '{')).rejects.toMatchObject({ code: 'INVALID_SCHEMA' });
  });

  it('sends basic auth from config or from the URL, and never shows it', async () => {
    const fromConfig = client([{ status: 200, body: { compatibilityLevel: 'NONE' } }], {
      username: 'svc',
      password: 's3cret',
    });
    await fromConfig.registry.getGlobalCompatibility();
    expect(fromConfig.seen[0]!.headers.authorization).toBe(`Basic ${Buffer.from('svc:s3cret').toString('base64')}`);

    const fromUrl = client([new TypeError('connect ECONNREFUSED')], {
      url: 'http://svc:s3cret@registry.test/apis/ccompat/v7',
      retry: { initialMs: 100, maxMs: 5_000, maxAttempts: 1 },
    });
    const error = (await fromUrl.registry.getGlobalCompatibility().catch((e: unknown) => e)) as Error;
    expect(fromUrl.seen[0]!.url).toBe('http://registry.test/apis/ccompat/v7/config');
    expect(fromUrl.seen[0]!.headers.authorization).toBe(`Basic ${Buffer.from('svc:s3cret').toString('base64')}`);
    const shown = [error.message, JSON.stringify(fromUrl.registry), JSON.stringify(fromConfig.registry)].join(' ');
    expect(shown).not.toMatch(/s3cret/);
    expect(JSON.stringify(fromUrl.registry)).toBe('{"url":"http://registry.test/apis/ccompat/v7","auth":true}');
  });

  it('encodes subjects in paths and posts the schema as JSON', async () => {
    const { registry, seen } = client([{ status: 200, body: { id: 5 } }]);
    await expect(registry.register('orders-com.x/Y', '"string"')).resolves.toBe(5);
    expect(seen[0]!.url).toBe('http://registry.test/apis/ccompat/v7/subjects/orders-com.x%2FY/versions');
    expect(JSON.parse(seen[0]!.body!)).toEqual({ schema: '"string"' });
    expect(seen[0]!.headers['content-type']).toBe('application/vnd.schemaregistry.v1+json');
  });

  it('reads a compatibility verdict, with messages when given, and a missing subject as compatible', async () => {
    const { registry } = client([
      { status: 200, body: { is_compatible: false, messages: ['field x'] } },
      { status: 200, body: { is_compatible: true } },
      { status: 404, body: { error_code: 40401, message: 'Subject not found' } },
    ]);
    await expect(registry.testCompatibility('s', '"int"')).resolves.toEqual({
      compatible: false,
      messages: ['field x'],
    });
    await expect(registry.testCompatibility('s', '"int"', 'all')).resolves.toEqual({ compatible: true, messages: [] });
    await expect(registry.testCompatibility('s', '"int"')).resolves.toEqual({ compatible: true, messages: [] });
  });
});

describe('discoverCompatibility', () => {
  it.each([
    [
      'subject level wins',
      { status: 200, body: { compatibilityLevel: 'FULL' } },
      undefined,
      { level: 'FULL', source: 'subject' },
    ],
    [
      'unknown subject (404) falls back to global',
      { status: 404, body: { error_code: 40401 } },
      { status: 200, body: { compatibilityLevel: 'BACKWARD' } },
      { level: 'BACKWARD', source: 'global' },
    ],
    [
      "Apicurio's NONE (no rule) falls back to global",
      { status: 200, body: { compatibilityLevel: 'NONE' } },
      { status: 200, body: { compatibilityLevel: 'FORWARD_TRANSITIVE' } },
      { level: 'FORWARD_TRANSITIVE', source: 'global' },
    ],
    [
      'Confluent 40408 (no subject config) falls back to global',
      { status: 404, body: { error_code: 40408 } },
      { status: 200, body: { compatibilityLevel: 'NONE' } },
      { level: 'NONE', source: 'global' },
    ],
  ] as const)('%s', async (_name, subjectReply, globalReply, expected) => {
    const { registry } = client(globalReply ? [subjectReply, globalReply] : [subjectReply]);
    await expect(discoverCompatibility(registry, 'orders-value')).resolves.toEqual(expected);
  });
});
