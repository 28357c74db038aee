import { compactVerify, createLocalJWKSet, type JWK } from 'jose'

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
    ;({ payload } = await compactVerify(document, createLocalJWKSet({ keys }), {
      algorithms: ['ES256'],
      typ: PIN_SET_TYPE,
    } as Parameters<typeof compactVerify>[2]))
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
  if (!Number.isFinite(from) || !Number.isFinite(until) || typeof set.hosts !== 'object' || set.hosts === null) {
    throw new PinSetError('the pin set is malformed')
  }
  if (now.getTime() < from || now.getTime() > until) throw new PinSetError('the pin set is outside its validity')
  return set
}
