import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto'
import { Encoder } from 'cbor-x'

/**
 * A WebAuthn authenticator in software, for tests only: one P-256 (ES256) credential, attestation `none`, flags
 * UP|UV by default, a sign counter that moves by one per assertion. It answers what a browser's
 * `PublicKeyCredential.toJSON()` would give, and every part a test wants to break can be overridden.
 */
export interface CeremonyOverrides {
  origin?: string
  rpId?: string
  challenge?: string
  type?: string
  userPresent?: boolean
  userVerified?: boolean
  /** Backup eligible and backed up (a synced passkey). */
  backupEligible?: boolean
  backedUp?: boolean
  /** The counter to sign, instead of the next one. */
  counter?: number
  userHandle?: string | undefined
}

const FLAG_UP = 0x01
const FLAG_UV = 0x04
const FLAG_BE = 0x08
const FLAG_BS = 0x10
const FLAG_AT = 0x40

/** Minimal-length CBOR, as authenticators write it (and strict decoders expect). */
const cbor = new Encoder({ variableMapSize: true, useRecords: false, tagUint8Array: false, mapsAsObjects: false })
const encode = (value: unknown) => cbor.encode(value)

const b64u = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest()

export interface CreationOptions {
  challenge: string
  rp: { id?: string; name: string }
  user: { id: string; name: string }
}

export class SoftwareAuthenticator {
  readonly credentialId: Buffer
  readonly #privateKey: KeyObject
  readonly #publicKey: KeyObject
  /** The last counter signed; tests set it back to play a cloned key. */
  counter = 0
  userHandle: string | undefined
  readonly origin: string
  readonly rpId: string
  readonly backupEligible: boolean

  constructor(options: { origin: string; rpId: string; backupEligible?: boolean; counting?: boolean }) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    this.#privateKey = privateKey
    this.#publicKey = publicKey
    this.credentialId = randomBytes(32)
    this.origin = options.origin
    this.rpId = options.rpId
    this.backupEligible = options.backupEligible ?? false
    this.#counting = options.counting ?? true
  }

  readonly #counting: boolean

  get id(): string {
    return b64u(this.credentialId)
  }

  /** The public key as a COSE_Key (EC2, ES256, P-256). */
  cosePublicKey(): Uint8Array {
    const jwk = this.#publicKey.export({ format: 'jwk' })
    return encode(
      new Map<number, number | Buffer>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, Buffer.from(jwk.x as string, 'base64url')],
        [-3, Buffer.from(jwk.y as string, 'base64url')],
      ]),
    )
  }

  #flags(o: CeremonyOverrides, extra: number): number {
    let flags = extra
    if (o.userPresent ?? true) flags |= FLAG_UP
    if (o.userVerified ?? true) flags |= FLAG_UV
    if (o.backupEligible ?? this.backupEligible) flags |= FLAG_BE
    if (o.backedUp ?? this.backupEligible) flags |= FLAG_BS
    return flags
  }

  #clientData(type: string, challenge: string, o: CeremonyOverrides): Buffer {
    return Buffer.from(
      JSON.stringify({ type: o.type ?? type, challenge: o.challenge ?? challenge, origin: o.origin ?? this.origin }),
    )
  }

  #counterBytes(counter: number): Buffer {
    const bytes = Buffer.alloc(4)
    bytes.writeUInt32BE(counter)
    return bytes
  }

  /** navigator.credentials.create: authenticator data with the attested credential, in a `none` attestation. */
  register(options: CreationOptions, o: CeremonyOverrides = {}) {
    // The user handle is the account the credential was first made for; registering it again does not change it.
    this.userHandle ??= options.user.id
    const rpIdHash = sha256(o.rpId ?? options.rp.id ?? this.rpId)
    const idLength = Buffer.alloc(2)
    idLength.writeUInt16BE(this.credentialId.length)
    const authData = Buffer.concat([
      rpIdHash,
      Buffer.from([this.#flags(o, FLAG_AT)]),
      this.#counterBytes(o.counter ?? this.counter),
      Buffer.alloc(16), // AAGUID: zeros, as `none` attestation allows
      idLength,
      this.credentialId,
      this.cosePublicKey(),
    ])
    const clientDataJSON = this.#clientData('webauthn.create', options.challenge, o)
    const attestationObject = encode({ fmt: 'none', attStmt: {}, authData })
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key' as const,
      response: {
        clientDataJSON: b64u(clientDataJSON),
        attestationObject: b64u(attestationObject),
        transports: ['internal'],
      },
      authenticatorAttachment: 'platform' as const,
      clientExtensionResults: {},
    }
  }

  /** navigator.credentials.get: authenticator data and a signature over authData || SHA-256(clientDataJSON). */
  assert(options: { challenge: string; rpId?: string }, o: CeremonyOverrides = {}) {
    const counter = o.counter ?? (this.#counting ? this.counter + 1 : 0)
    if (o.counter === undefined) this.counter = counter
    const authData = Buffer.concat([
      sha256(o.rpId ?? options.rpId ?? this.rpId),
      Buffer.from([this.#flags(o, 0)]),
      this.#counterBytes(counter),
    ])
    const clientDataJSON = this.#clientData('webauthn.get', options.challenge, o)
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), this.#privateKey)
    const userHandle = 'userHandle' in o ? o.userHandle : this.userHandle
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key' as const,
      response: {
        clientDataJSON: b64u(clientDataJSON),
        authenticatorData: b64u(authData),
        signature: b64u(signature),
        ...(userHandle ? { userHandle } : {}),
      },
      authenticatorAttachment: 'platform' as const,
      clientExtensionResults: {},
    }
  }
}

/** The same assertion with one bit of its signature flipped. */
export function tamperSignature<T extends { response: { signature: string } }>(assertion: T): T {
  const signature = Buffer.from(assertion.response.signature, 'base64url')
  signature[signature.length - 4] = (signature[signature.length - 4] as number) ^ 0x01
  return { ...assertion, response: { ...assertion.response, signature: signature.toString('base64url') } }
}
