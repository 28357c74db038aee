import { type CompactJWSHeaderParameters, compactVerify, importJWK, type JWK } from 'jose'

/**
 * A pin set: for each API host, the SHA-256 hashes of the public keys (SPKI) its TLS certificates may carry, valid
 * for a window. The server signs it (JWS, ES256) with a key whose public half the app carries, so a pin set can be
 * rotated for every installed app without a release: publish a set with the new pin beside the old one, move the
 * servers to the new certificate, then publish a set without the old pin.
 */
export interface PinSet {
  version: number
  notBefore: string
  notAfter: string
  hosts: Record<string, string[]>
}

export const PIN_SET_TYPE = 'strongroom-pin-set+jws'

/** Thrown for a pin set that does not verify, is outside its window, or is malformed; says nothing else. */
export class PinSetError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'PinSetError'
  }
}

/**
 * Verifies a pin set document against the pin-set keys the app carries and the clock. Returns the set; throws a
 * PinSetError otherwise.
 *
 * @example
 * const pins = await verifyPinSet(await (await fetch(`${base}/.well-known/strongroom-pins`)).text(), [pinSetKey])
 */
export async function verifyPinSet(document: string, keys: JWK[], now = new Date()): Promise<PinSet> {
  let payload: Uint8Array
  try {
    // The key is picked by hand rather than with jose's createLocalJWKSet, which needs structuredClone: Hermes
    // (React Native) has none. compactVerify does not check `typ`, so it is checked here.
    const keyFor = (header: CompactJWSHeaderParameters) => {
      const jwk = keys.find((key) => key.kid !== undefined && key.kid === header.kid)
      if (header.typ !== PIN_SET_TYPE || jwk === undefined) throw new PinSetError('the pin set does not verify')
      return importJWK(jwk, 'ES256')
    }
    ;({ payload } = await compactVerify(document, keyFor, { algorithms: ['ES256'] }))
  } catch {
    throw new PinSetError('the pin set does not verify')
  }
  let set: PinSet
  try {
    set = JSON.parse(new TextDecoder().decode(payload)) as PinSet
  } catch {
    throw new PinSetError('the pin set is malformed')
  }
  const from = Date.parse(set.notBefore)
  const until = Date.parse(set.notAfter)
  const hostsValid = typeof set.hosts === 'object' && set.hosts !== null
  if (!Number.isFinite(from) || !Number.isFinite(until) || !hostsValid || !Number.isSafeInteger(set.version)) {
    throw new PinSetError('the pin set is malformed')
  }
  if (now.getTime() < from || now.getTime() > until) throw new PinSetError('the pin set is outside its validity')
  return set
}

/**
 * Where an app keeps the newest pin-set version it has accepted, across restarts: the Keychain or Keystore-backed
 * storage on a phone, IndexedDB or localStorage in a page. Losing it only loses rollback protection, never access.
 */
export interface PinSetVersionStore {
  load(): Promise<number | undefined>
  save(version: number): Promise<void>
}

/** A store that forgets on restart: for tests, and for processes that fetch the pin set once at start. */
export function memoryPinSetVersionStore(): PinSetVersionStore {
  let newest: number | undefined
  return {
    load: async () => newest,
    save: async (version) => {
      newest = version
    },
  }
}

/**
 * Verifies a pin set (see `verifyPinSet`) and refuses one older than the newest this app has accepted: pin-set
 * versions only grow, so an attacker who kept an old, validly signed set (pinning a key since retired, perhaps
 * compromised) cannot serve it to roll the app back. A newer set is remembered; the same version again is accepted.
 *
 * @example
 * const pins = await acceptPinSet(await (await fetch(`${base}/.well-known/strongroom-pins`)).text(), [pinSetKey], store)
 */
export async function acceptPinSet(
  document: string,
  keys: JWK[],
  store: PinSetVersionStore,
  now = new Date(),
): Promise<PinSet> {
  const set = await verifyPinSet(document, keys, now)
  const newest = await store.load()
  if (newest !== undefined && set.version < newest) {
    throw new PinSetError('the pin set is older than one already accepted')
  }
  if (newest === undefined || set.version > newest) await store.save(set.version)
  return set
}

/**
 * What a page (a browser, a React Native or native webview) can enforce of a pin set: requests go over https to the
 * hosts the set names, and to no other. A page cannot see the server's certificate, so the key pins themselves are
 * for the native layer to enforce (Android's network security config, iOS's NSPinnedDomains, a pinning fetch in
 * React Native); `pinnedFetch` from `@strongroom/sdk/pins-node` enforces them in Node.
 *
 * @example
 * const client = new DeviceClient({ baseUrl, credentials, fetch: pinSetPolicyFetch(pins) })
 */
export function pinSetPolicyFetch(set: PinSet, fetchImpl: typeof fetch = globalThis.fetch): typeof fetch {
  return ((input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url)
    if (url.protocol !== 'https:' || !Object.hasOwn(set.hosts, url.hostname)) {
      return Promise.reject(new PinSetError(`${url.host} is not a host of the pin set`))
    }
    return fetchImpl(input, init)
  }) as typeof fetch
}
