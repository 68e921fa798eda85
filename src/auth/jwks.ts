import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';

/** The asymmetric algorithms we accept, and the key each one needs. */
const KEY_TYPES: Record<string, { kty: string; crv?: string[] }> = {
  EdDSA: { kty: 'OKP', crv: ['Ed25519', 'Ed448'] },
  ES256: { kty: 'EC', crv: ['P-256'] },
  ES384: { kty: 'EC', crv: ['P-384'] },
  ES512: { kty: 'EC', crv: ['P-521'] },
  RS256: { kty: 'RSA' },
  RS384: { kty: 'RSA' },
  RS512: { kty: 'RSA' },
  PS256: { kty: 'RSA' },
  PS384: { kty: 'RSA' },
  PS512: { kty: 'RSA' },
};

const PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth']);

export const ASYMMETRIC_ALGORITHMS = Object.keys(KEY_TYPES);

/** The issuer's keys could not be fetched and we have none for this token: our failure, not the user's. */
export class JwksUnavailableError extends Error {
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'JwksUnavailableError';
  }
}

interface CachedKey {
  kid: string | undefined;
  kty: string;
  crv: string | undefined;
  alg: string | undefined;
  pem: string;
}

export interface JwksOptions {
  url: string;
  /** The least time between two fetches, so a flood of unknown `kid`s cannot hammer the issuer. */
  minRefetchIntervalMs?: number;
  /** How long fetched keys are trusted before the next use refetches them. */
  maxAgeMs?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Called after each fetch of the JWKS (metrics). */
  onFetch?: ((outcome: 'ok' | 'error') => void) | undefined;
}

/**
 * The public keys published at a JWKS URL, cached. A token whose `kid` we do
 * not know triggers one refetch (key rotation works without a restart), at most
 * once per `minRefetchIntervalMs`; concurrent lookups share one fetch. Keys
 * older than `maxAgeMs` are rechecked in the background: the request that
 * notices keeps using the key it has and never waits for the issuer.
 */
export class JwksKeyStore {
  private keys: CachedKey[] = [];
  private fetchedAt = -Infinity;
  private lastError: unknown;
  private inflight: Promise<void> | undefined;
  private readonly minInterval: number;
  private readonly maxAge: number;
  private readonly timeout: number;
  private readonly doFetch: typeof fetch;

  private readonly options: JwksOptions;

  constructor(options: JwksOptions) {
    this.options = options;
    this.minInterval = options.minRefetchIntervalMs ?? 10_000;
    this.maxAge = Math.max(options.maxAgeMs ?? 10 * 60_000, this.minInterval);
    this.timeout = options.timeoutMs ?? 5_000;
    this.doFetch = options.fetch ?? fetch;
  }

  /**
   * The PEM of the key for a token's `alg` and `kid`, or undefined when the
   * issuer has no such key. Throws JwksUnavailableError when the keys cannot be
   * fetched and none in the cache fits.
   */
  async keyFor(alg: string, kid: string | undefined): Promise<string | undefined> {
    const wanted = KEY_TYPES[alg];
    if (!wanted) return undefined;
    const cached = this.find(alg, kid);
    if (cached) {
      // Old keys are rechecked now and then, so a key the issuer withdrew stops working soon;
      // while the issuer is down (lastError), cached keys keep working.
      if (Date.now() - this.fetchedAt >= this.maxAge) this.refresh().catch(() => {});
      return cached.pem;
    }
    if (Date.now() - this.fetchedAt >= this.minInterval) {
      await this.refresh();
    } else if (this.lastError !== undefined) {
      throw new JwksUnavailableError(`the JWKS at ${this.options.url} is unreachable`, { cause: this.lastError });
    }
    return this.find(alg, kid)?.pem;
  }

  private find(alg: string, kid: string | undefined): CachedKey | undefined {
    const wanted = KEY_TYPES[alg];
    if (!wanted) return undefined;
    const fits = (k: CachedKey) =>
      k.kty === wanted.kty && (wanted.crv === undefined || (k.crv !== undefined && wanted.crv.includes(k.crv))) && (k.alg === undefined || k.alg === alg);
    if (kid !== undefined) return this.keys.find((k) => k.kid === kid && fits(k));
    // No kid: only unambiguous when the issuer publishes exactly one key of this kind.
    const candidates = this.keys.filter(fits);
    return candidates.length === 1 ? candidates[0] : undefined;
  }

  private refresh(): Promise<void> {
    this.inflight ??= this.load().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async load(): Promise<void> {
    this.fetchedAt = Date.now();
    let body: unknown;
    try {
      const res = await this.doFetch(this.options.url, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(this.timeout),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      body = await res.json();
    } catch (err) {
      this.lastError = err;
      this.options.onFetch?.('error');
      throw new JwksUnavailableError(`the JWKS at ${this.options.url} is unreachable: ${(err as Error).message}`, { cause: err });
    }
    const list = (body as { keys?: unknown }).keys;
    if (!Array.isArray(list)) {
      this.lastError = new Error('no "keys" array');
      this.options.onFetch?.('error');
      throw new JwksUnavailableError(`the JWKS at ${this.options.url} has no "keys" array`);
    }
    this.lastError = undefined;
    this.options.onFetch?.('ok');
    this.keys = list.flatMap((jwk) => toCachedKey(jwk as JsonWebKey & { kid?: string; alg?: string; use?: string }));
  }
}

function toCachedKey(jwk: JsonWebKey & { kid?: string; alg?: string; use?: string }): CachedKey[] {
  // Symmetric keys never come from a JWKS we trust, and encryption keys are not for signatures.
  if (typeof jwk.kty !== 'string' || jwk.kty === 'oct' || (jwk.use !== undefined && jwk.use !== 'sig')) return [];
  let key: KeyObject;
  try {
    // Only the public members: a JWKS that leaks a private key still gives us only its public half.
    const publicPart = Object.fromEntries(Object.entries(jwk).filter(([name]) => !PRIVATE_MEMBERS.has(name)));
    key = createPublicKey({ key: publicPart as JsonWebKey, format: 'jwk' });
  } catch {
    return [];
  }
  return [
    {
      kid: typeof jwk.kid === 'string' ? jwk.kid : undefined,
      kty: jwk.kty,
      crv: typeof jwk.crv === 'string' ? jwk.crv : undefined,
      alg: typeof jwk.alg === 'string' ? jwk.alg : undefined,
      pem: key.export({ format: 'pem', type: 'spki' }).toString(),
    },
  ];
}
