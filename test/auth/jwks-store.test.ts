import { generateKeyPairSync } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { JwksKeyStore, JwksUnavailableError } from '../../src/auth/jwks.ts';

const key = { ...generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }), kid: 'k1' };

/** A JWKS "server" as a fetch function: its answer is whatever `state` says now. */
function fakeFetch(state: { keys: object[]; down: boolean; calls: number }): typeof fetch {
  return (async () => {
    state.calls++;
    if (state.down) throw new TypeError('fetch failed');
    return new Response(JSON.stringify({ keys: state.keys }), { headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
}

t.test('a withdrawn key stops working once the cache is older than its max age', async (t) => {
  const state = { keys: [key] as object[], down: false, calls: 0 };
  const store = new JwksKeyStore({ url: 'http://issuer.test/jwks', minRefetchIntervalMs: 0, maxAgeMs: 1000, fetch: fakeFetch(state) });
  t.type(await store.keyFor('EdDSA', 'k1'), 'string');
  t.type(await store.keyFor('EdDSA', 'k1'), 'string', 'cached');
  t.equal(state.calls, 1);
  state.keys = [];
  await sleep(1100);
  t.type(await store.keyFor('EdDSA', 'k1'), 'string', 'past max age: served from the cache while it is rechecked');
  await sleep(10); // the background refetch completes
  t.equal(state.calls, 2);
  t.equal(await store.keyFor('EdDSA', 'k1'), undefined, 'after the recheck: gone');
});

t.test('no lookup of a cached key waits for its recheck', async (t) => {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  let calls = 0;
  let finished = 0;
  const slowIssuer = (async () => {
    calls++;
    if (calls > 1) await gate; // the recheck hangs until the test lets it go
    finished++;
    return new Response(JSON.stringify({ keys: [key] }), { headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  const store = new JwksKeyStore({ url: 'http://issuer.test/jwks', minRefetchIntervalMs: 0, maxAgeMs: 20, fetch: slowIssuer });
  t.type(await store.keyFor('EdDSA', 'k1'), 'string');
  await sleep(30);
  const stuck = new Promise<'waited'>((resolve) => setTimeout(() => resolve('waited'), 2000).unref());
  for (let i = 0; i < 5; i++) {
    const answer = await Promise.race([store.keyFor('EdDSA', 'k1'), stuck]);
    t.match(answer, /BEGIN PUBLIC KEY/, `lookup ${i + 1} answers from the cache`);
  }
  t.equal(calls, 2, 'one recheck started (shared by all lookups)');
  t.equal(finished, 1, 'and it has not finished: no lookup waited for it');
  release();
  await sleep(10);
  t.equal(finished, 2);
});

t.test('each fetch is reported (for metrics)', async (t) => {
  const state = { keys: [key] as object[], down: false, calls: 0 };
  const outcomes: string[] = [];
  const store = new JwksKeyStore({ url: 'http://issuer.test/jwks', minRefetchIntervalMs: 0, fetch: fakeFetch(state), onFetch: (o) => outcomes.push(o) });
  await store.keyFor('EdDSA', 'k1');
  state.down = true;
  await t.rejects(store.keyFor('EdDSA', 'nope'));
  t.same(outcomes, ['ok', 'error']);
});

t.test('past its max age, a cached key still works while the issuer is down', async (t) => {
  const state = { keys: [key] as object[], down: false, calls: 0 };
  const store = new JwksKeyStore({ url: 'http://issuer.test/jwks', minRefetchIntervalMs: 0, maxAgeMs: 20, fetch: fakeFetch(state) });
  t.type(await store.keyFor('EdDSA', 'k1'), 'string');
  state.down = true;
  await sleep(30);
  t.type(await store.keyFor('EdDSA', 'k1'), 'string', 'the refetch failed; the cached key is used');
  await t.rejects(store.keyFor('EdDSA', 'other'), JwksUnavailableError, 'an unknown kid while down: unavailable');
});

t.test('concurrent lookups of unknown kids share one fetch', async (t) => {
  const state = { keys: [key] as object[], down: false, calls: 0 };
  const store = new JwksKeyStore({ url: 'http://issuer.test/jwks', minRefetchIntervalMs: 0, fetch: fakeFetch(state) });
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.keyFor('EdDSA', i === 0 ? 'k1' : `x${i}`)));
  t.type(results[0], 'string');
  t.ok(results.slice(1).every((r) => r === undefined));
  t.ok(state.calls <= 2, `fetches: ${state.calls}`);
});

t.test('keys of the wrong type for the algorithm are never returned', async (t) => {
  const rsa = { ...generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }), kid: 'r1' };
  const state = { keys: [key, rsa, { kty: 'oct', kid: 's1', k: 'c2VjcmV0' }] as object[], down: false, calls: 0 };
  const store = new JwksKeyStore({ url: 'http://issuer.test/jwks', fetch: fakeFetch(state) });
  t.equal(await store.keyFor('RS256', 'k1'), undefined, 'an Ed25519 key for RS256');
  t.equal(await store.keyFor('EdDSA', 'r1'), undefined, 'an RSA key for EdDSA');
  t.equal(await store.keyFor('ES256', 'r1'), undefined, 'an RSA key for ES256');
  t.equal(await store.keyFor('HS256', 's1'), undefined, 'a symmetric key, ever');
  t.match(await store.keyFor('RS256', 'r1'), /BEGIN PUBLIC KEY/);
});
