/**
 * build(t): the real app on a real PostgreSQL, in a schema of its own that is
 * dropped when the test ends. Requests go through `api`, which checks every
 * response against openapi.yaml.
 */
import { randomBytes } from 'node:crypto';
import { connect, type AddressInfo } from 'node:net';
import { createSigner } from 'fast-jwt';
import type { FastifyInstance, InjectOptions } from 'fastify';
import postgres from 'postgres';
import type * as Tap from 'tap';
import { buildApp, type AppOptions } from '../src/app.ts';
import { createSql, type Sql } from '../src/db/client.ts';
import { migrate } from '../src/db/migrate.ts';
import { contractProblems } from './contract.ts';

export type Test = Tap.Test;

export const SECRET = 'test-secret-that-is-at-least-32-characters-long';
export const ORIGIN = 'http://localhost:3000';

export function databaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error('no database: run the tests with `npm test` (it starts one), or set DATABASE_URL');
  return url;
}

/** A URL whose connections work in `schema` only. */
export function urlWithSchema(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('search_path', schema);
  return u.toString();
}

/** A fresh, migrated schema on the test server; dropped at teardown. */
export async function freshSchema(t: Test): Promise<{ url: string; schema: string }> {
  const schema = `test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE SCHEMA ${schema}`);
  const url = urlWithSchema(databaseUrl(), schema);
  const sql = createSql(url, { max: 1 });
  await migrate(sql);
  await sql.end();
  t.teardown(async () => {
    await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  });
  return { url, schema };
}

/** The operations on /api/tasks/{id}, each with a valid body where it needs one. */
export const TASK_ID_OPERATIONS = [
  ['GET', undefined],
  ['PUT', { title: 'x' }],
  ['PATCH', { status: 'completed' }],
  ['DELETE', undefined],
] as const;

export interface Built {
  app: FastifyInstance;
  sql: Sql;
  api: Api;
  url: string;
}

export async function build(t: Test, options: Partial<AppOptions> = {}): Promise<Built> {
  const { url } = await freshSchema(t);
  const sql = options.sql ?? createSql(url);
  // Rate limits are off unless a test asks for them.
  const app = await buildApp({ sql, secretKey: SECRET, corsOrigins: [ORIGIN], rateLimitPerMinute: 0, authFailureLimitPerMinute: 0, ...options });
  await app.ready();
  // Registered after freshSchema's teardown, so it runs first (LIFO): close the app, then drop.
  t.teardown(() => app.close());
  return { app, sql, api: new Api(t, app), url };
}

export interface TokenOptions {
  email?: string;
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
  secret?: string;
  claims?: Record<string, unknown>;
}

/** A real HS256 token, as the frontend's auth server would sign it. */
export function token(sub: unknown, options: TokenOptions = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const sign = createSigner({ key: options.secret ?? SECRET, algorithm: 'HS256' });
  return sign({
    sub,
    iat: now,
    exp: now + (options.expiresIn ?? 3600),
    ...(options.email !== undefined && { email: options.email }),
    ...options.claims,
  });
}

export interface Sent {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  json: <T = any>() => T;
}

type RequestOptions = Omit<InjectOptions, 'method' | 'url'> & { token?: string; as?: string };

/** app.inject with a token, checking every response against the contract. */
export class Api {
  private readonly t: Test;
  readonly app: FastifyInstance;
  constructor(t: Test, app: FastifyInstance) {
    this.t = t;
    this.app = app;
  }

  async request(method: string, url: string, options: RequestOptions = {}): Promise<Sent> {
    const { token: bearer, as, headers, ...rest } = options;
    const auth = bearer ?? (as !== undefined ? token(as) : undefined);
    const res = await this.app.inject({
      ...rest,
      method: method as NonNullable<InjectOptions['method']>,
      url,
      headers: { ...(auth !== undefined && { authorization: `Bearer ${auth}` }), ...headers },
    } as InjectOptions);
    const problems = contractProblems({ method, url, statusCode: res.statusCode, headers: res.headers, body: res.body });
    this.t.same(problems, [], `${method} ${url} -> ${res.statusCode} conforms to openapi.yaml`);
    return { statusCode: res.statusCode, headers: res.headers, body: res.body, json: () => res.json() };
  }

  get = (url: string, o?: RequestOptions) => this.request('GET', url, o);
  post = (url: string, o?: RequestOptions) => this.request('POST', url, o);
  put = (url: string, o?: RequestOptions) => this.request('PUT', url, o);
  patch = (url: string, o?: RequestOptions) => this.request('PATCH', url, o);
  delete = (url: string, o?: RequestOptions) => this.request('DELETE', url, o);

  /** Creates a task for `user` and returns it. */
  async createTask(user: string, title = 'A task'): Promise<any> {
    const res = await this.post('/api/tasks', { as: user, payload: { title } });
    this.t.equal(res.statusCode, 201, 'task created');
    return res.json();
  }
}

/**
 * Listens on a free loopback port and returns a sender of raw request bytes, for what
 * Node's HTTP parser refuses before Fastify sees it (inject cannot send those).
 */
export async function rawSender(app: FastifyInstance): Promise<(request: string) => Promise<string>> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return (request: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.end(request));
      let data = '';
      socket.setEncoding('utf8').on('data', (c: string) => (data += c));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
}
