import type { DeviceKeys } from './device-keys.ts'
import { createDpopProof } from './dpop.ts'
import { StrongroomError } from './errors.ts'

/** What a request or a stream presents: an Authorization header value and, for devices, a DPoP proof. */
export interface Credentials {
  authorize(htm: string, htu: string): Promise<{ authorization: string; dpop?: string }>
  /** Forget a token the server no longer accepts; the next authorize gets a fresh one if it can. */
  invalidate(): void
}

/** A staff member's API token (srs_…), sent as a bearer token. */
export class StaffToken implements Credentials {
  readonly #token: string
  constructor(token: string) {
    this.#token = token
  }
  async authorize() {
    return { authorization: `Bearer ${this.#token}` }
  }
  invalidate() {}
}

const RENEW_BEFORE_MS = 30_000

/**
 * An enrolled device: its key pair signs a DPoP proof for every request, and it renews its short-lived access token
 * by proving the key again, so there is no long-lived secret to steal.
 */
export class DeviceKey implements Credentials {
  readonly keys: DeviceKeys
  #token: { value: string; expiresAt: number } | undefined
  #renewing: Promise<string> | undefined
  readonly #fetch: typeof fetch

  constructor(keys: DeviceKeys, options: { accessToken?: string; expiresIn?: number; fetch?: typeof fetch } = {}) {
    this.keys = keys
    this.#fetch = options.fetch ?? fetch
    if (options.accessToken && options.expiresIn) {
      this.#token = { value: options.accessToken, expiresAt: Date.now() + options.expiresIn * 1000 }
    }
  }

  async authorize(htm: string, htu: string) {
    const accessToken = await this.#accessToken(new URL(htu).origin)
    return { authorization: `DPoP ${accessToken}`, dpop: await createDpopProof(this.keys, { htm, htu, accessToken }) }
  }

  invalidate() {
    this.#token = undefined
  }

  async #accessToken(origin: string): Promise<string> {
    if (this.#token && this.#token.expiresAt - RENEW_BEFORE_MS > Date.now()) return this.#token.value
    this.#renewing ??= this.#renew(origin).finally(() => {
      this.#renewing = undefined
    })
    return this.#renewing
  }

  async #renew(origin: string): Promise<string> {
    const htu = `${origin}/v1/devices/token`
    const response = await this.#fetch(htu, {
      method: 'POST',
      headers: { dpop: await createDpopProof(this.keys, { htm: 'POST', htu }) },
    })
    const body = await response.json()
    if (!response.ok) throw new StrongroomError(body)
    this.#token = { value: body.accessToken, expiresAt: Date.now() + body.expiresIn * 1000 }
    return body.accessToken
  }
}
