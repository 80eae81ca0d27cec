// The worker's HTTP face for operators: /metrics (Prometheus text), /healthz (the process answers and no stall
// was seen) and /readyz (partitions assigned, tables caught up, sinks reachable, plus any check given), on a small
// node:http server.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PipelinesError } from '../errors.ts';
import { portOf, settingError } from '../settings.ts';
import type { Metrics, Readiness } from './metrics.ts';

export const DEFAULT_OBSERVE_HOST = '127.0.0.1';
export const DEFAULT_OBSERVE_PORT = 19100;

/** An extra readiness check (e.g. a ClickHouse ping); returns reasons for not being ready, empty when fine. */
export type ReadinessCheck = () => string[] | Promise<string[]>;

export interface ObserveServerOptions {
  metrics: Metrics;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  checks?: ReadinessCheck[];
  /** Why the process is not healthy (e.g. the worker's liveness guard saw a stall); empty when it is. */
  liveness?: () => string[];
}

export interface ObserveServer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readiness(): Promise<Readiness>;
  close(): Promise<void>;
}

/**
 * The bind address from the environment: PIPELINES_METRICS_ADDRESS as `host:port`, `:port` or `port`
 * (defaults 127.0.0.1:19100). Bind 0.0.0.0 in a container so that Prometheus can reach it.
 */
export function observeAddressFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  name = 'PIPELINES_METRICS_ADDRESS',
): { host: string; port: number } {
  const raw = env.PIPELINES_METRICS_ADDRESS?.trim();
  if (!raw) return { host: DEFAULT_OBSERVE_HOST, port: DEFAULT_OBSERVE_PORT };
  const fix = 'host:port, :port or port, e.g. 0.0.0.0:19100';
  const m = /^(?:\[?([^\]]*?)\]?:)?([^:\]]*)$/.exec(raw);
  if (!m) throw settingError(name, `'${raw}' is not host:port`, fix);
  // 0 picks a free port.
  return { host: m[1] || DEFAULT_OBSERVE_HOST, port: portOf(name, m[2]!, raw, fix, 0) };
}

export async function startObserveServer(o: ObserveServerOptions): Promise<ObserveServer> {
  const host = o.host ?? DEFAULT_OBSERVE_HOST;
  const wanted = o.port ?? DEFAULT_OBSERVE_PORT;
  const registry = o.metrics.registry;
  const readiness = async (): Promise<Readiness> => {
    const own = o.metrics.readiness();
    const extra = await Promise.all(
      (o.checks ?? []).map(async (c) => {
        try {
          return await c();
        } catch (err) {
          return [`readiness check failed: ${(err as Error).message}`];
        }
      }),
    );
    const reasons = [...own.reasons, ...extra.flat()];
    return { ready: reasons.length === 0, reasons };
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'text/plain', 'method not allowed\n');
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => reply(200, registry.contentType, text),
        (err: Error) => reply(500, 'text/plain', `metrics failed: ${err.message}\n`),
      );
    } else if (path === '/healthz') {
      const reasons = o.liveness?.() ?? [];
      const alive = reasons.length === 0;
      const body = { alive, uptimeSeconds: Math.round(process.uptime()), ...(alive ? {} : { reasons }) };
      reply(alive ? 200 : 503, 'application/json', `${JSON.stringify(body)}\n`);
    } else if (path === '/readyz') {
      readiness().then((r) => reply(r.ready ? 200 : 503, 'application/json', `${JSON.stringify(r)}\n`));
    } else {
      reply(404, 'text/plain', 'not found: try /metrics, /healthz or /readyz\n');
    }
  });
  // Scrapes are short; do not keep idle sockets from holding shutdown.
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(
          new PipelinesError(
            'METRICS_ADDRESS_TAKEN',
            `metrics address ${host}:${wanted} is taken: set PIPELINES_METRICS_ADDRESS to another port`,
            { cause: err },
          ),
        );
      } else reject(err);
    };
    server.once('error', onError);
    server.listen(wanted, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}`,
    host,
    port,
    readiness,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
