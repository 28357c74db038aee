import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import pkcs11js from 'pkcs11js'
import type { KeyProvider, Signer, SigningAlgorithm, StoredSigningKey } from './key-provider.ts'

/** PKCS#11 3.0 mechanisms that pkcs11js (written for 2.40) has no names for. */
const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055
const CKM_EDDSA = 0x1057

/** CKA_EC_PARAMS (a DER object identifier) and the SubjectPublicKeyInfo prefix of each curve. */
const curves: Record<SigningAlgorithm, { generate: number; params: Buffer; spkiPrefix: Buffer }> = {
  ed25519: {
    generate: CKM_EC_EDWARDS_KEY_PAIR_GEN,
    params: Buffer.from('06032b6570', 'hex'),
    spkiPrefix: Buffer.from('302a300506032b6570032100', 'hex'),
  },
  p256: {
    generate: pkcs11js.CKM_EC_KEY_PAIR_GEN,
    params: Buffer.from('06082a8648ce3d030107', 'hex'),
    spkiPrefix: Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
  },
}

/** The KEK id of a signing key whose private half was made in the token and never leaves it. */
export const IN_TOKEN = 'in-token'
/** The live keyring's KEKs are `hsm-kek-N`; the compliance archive's, in the same or its own token, `hsm-archive-kek-N`. */
export const LIVE_KEK_LABEL = 'hsm-kek'
export const ARCHIVE_KEK_LABEL = 'hsm-archive-kek'
const SIGNING_KEY_LABEL = 'strongroom-signing-key'
const IV_BYTES = 12
const TAG_BYTES = 16

export interface Pkcs11Settings {
  /** The PKCS#11 library (a shared object). */
  module: string
  tokenLabel?: string | undefined
  slot?: number | undefined
  pinFile: string
  /** Whose KEKs these are: the live keyring's (the default) or the compliance archive's. */
  kekLabel?: typeof LIVE_KEK_LABEL | typeof ARCHIVE_KEK_LABEL | undefined
}

/** The token refused, or is not there; the message names the setting to look at, never the PIN. */
export class Pkcs11Error extends Error {
  override name = 'Pkcs11Error'
}

/**
 * A library is initialized once per process (a second C_Initialize fails) and its login is shared by every session
 * on the token, so every provider of the process shares them. `epoch` counts re-initializations: a session or object
 * handle from an earlier epoch is gone, and each provider re-opens what it holds when it sees a newer one.
 */
interface Library {
  p11: pkcs11js.PKCS11
  epoch: number
}
const libraries = new Map<string, Library>()

function library(module: string): Library {
  let loaded = libraries.get(module)
  if (!loaded) {
    const p11 = new pkcs11js.PKCS11()
    try {
      p11.load(module)
      p11.C_Initialize()
    } catch (error) {
      throw new Pkcs11Error(`the PKCS#11 library ${module} cannot be loaded: ${(error as Error).message}`)
    }
    loaded = { p11, epoch: 0 }
    libraries.set(module, loaded)
  }
  return loaded
}

/**
 * Finalizes and initializes the library again, so it reads the token afresh. Some libraries keep a per-process view
 * of the token's objects that can miss one another process made: SoftHSM2 2.6 marks an object it happened to read
 * while its creator was still writing it as invalid for the rest of the process's life. Node calls PKCS#11
 * synchronously, so no other call of this process is in flight while this runs.
 */
function reinitialize(loaded: Library): void {
  loaded.p11.C_Finalize()
  loaded.p11.C_Initialize()
  loaded.epoch++
}

function pkcs11Code(error: unknown): string | undefined {
  return error instanceof Error ? /^CKR_\w+/.exec(error.message)?.[0] : undefined
}

/** A read-write session on the configured token, logged in with the PIN file's PIN (once per process suffices). */
function openSession(p11: pkcs11js.PKCS11, settings: Pkcs11Settings): pkcs11js.Handle {
  const slot = p11
    .C_GetSlotList(true)
    .find((candidate) =>
      settings.slot !== undefined
        ? slotId(candidate) === settings.slot
        : p11.C_GetTokenInfo(candidate).label.trim() === settings.tokenLabel,
    )
  if (!slot) {
    throw new Pkcs11Error(
      settings.slot !== undefined
        ? `no initialized token in slot ${settings.slot} (STRONGROOM_PKCS11_SLOT)`
        : `no token labelled "${settings.tokenLabel}" (STRONGROOM_PKCS11_TOKEN_LABEL)`,
    )
  }
  let pin: string
  try {
    pin = readFileSync(settings.pinFile, 'utf8').replace(/\r?\n$/, '')
  } catch {
    throw new Pkcs11Error(`the PIN file ${settings.pinFile} cannot be read (STRONGROOM_PKCS11_PIN_FILE)`)
  }
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION)
  try {
    p11.C_Login(session, pkcs11js.CKU_USER, pin)
  } catch (error) {
    if (pkcs11Code(error) !== 'CKR_USER_ALREADY_LOGGED_IN') {
      p11.C_CloseSession(session)
      throw new Pkcs11Error(`the token refused the PIN from ${settings.pinFile} (${pkcs11Code(error) ?? 'error'})`)
    }
  }
  return session
}

/**
 * Keys in a PKCS#11 token (an HSM; SoftHSM2 in tests). The KEKs are AES-256 keys generated in the token, sensitive
 * and not extractable: a data key is wrapped and unwrapped by AES-GCM inside the token, with the same associated
 * data as the local key file uses. Signing keys are generated in the token too (Ed25519 with CKM_EDDSA, P-256 with
 * CKM_ECDSA over a SHA-256 digest); the database keeps their public half and the token object's CKA_ID.
 */
export class Pkcs11Provider implements KeyProvider {
  readonly name = 'pkcs11'
  readonly #library: Library
  readonly #p11: pkcs11js.PKCS11
  readonly #settings: Pkcs11Settings
  #openedSession: pkcs11js.Handle
  /** The library epoch the session and the handles below belong to. */
  #epoch: number
  /** KEK handles by id (`hsm-kek-N`); re-read from the token when an unknown id turns up (another node rotated). */
  #keks = new Map<string, pkcs11js.Handle>()
  readonly #kekLabel: string
  readonly #kekPattern: RegExp

  private constructor(loaded: Library, settings: Pkcs11Settings, session: pkcs11js.Handle) {
    this.#library = loaded
    this.#p11 = loaded.p11
    this.#settings = settings
    this.#openedSession = session
    this.#epoch = loaded.epoch
    this.#kekLabel = settings.kekLabel ?? LIVE_KEK_LABEL
    this.#kekPattern = new RegExp(`^${this.#kekLabel}-(\\d+)$`)
  }

  /** Opens a session on the token and logs in with the PIN file's PIN; with `create`, makes the first KEK if none. */
  static async open(settings: Pkcs11Settings, options: { create: boolean }): Promise<Pkcs11Provider> {
    const loaded = library(settings.module)
    const provider = new Pkcs11Provider(loaded, settings, openSession(loaded.p11, settings))
    provider.#readKeks()
    if (provider.#keks.size === 0) {
      if (!options.create) {
        loaded.p11.C_CloseSession(provider.#openedSession)
        throw new Pkcs11Error('the token holds no key-encryption key (create it with `strongroom keys init`)')
      }
      await provider.rotate()
    }
    return provider
  }

  /** This provider's session, opened again (and the KEKs read again) after the library was re-initialized. */
  get #session(): pkcs11js.Handle {
    this.#reopenIfStale()
    return this.#openedSession
  }

  #reopenIfStale(): void {
    if (this.#epoch === this.#library.epoch) return
    this.#openedSession = openSession(this.#p11, this.#settings)
    this.#epoch = this.#library.epoch
    this.#readKeks()
  }

  /** The KEK of this id, looked for again in the token if this process has not seen it yet. */
  #kek(kekId: string): pkcs11js.Handle | undefined {
    this.#reopenIfStale()
    if (!this.#keks.has(kekId)) this.#readKeks()
    if (!this.#keks.has(kekId)) {
      // The database names it, so another node made it: look once more, with the library's view read afresh.
      reinitialize(this.#library)
      this.#reopenIfStale()
    }
    return this.#keks.get(kekId)
  }

  async currentKekId(): Promise<string> {
    return this.#current()
  }

  async wrap(dataKey: Buffer, aad: Buffer): Promise<{ kekId: string; wrapped: Buffer }> {
    const session = this.#session
    const kekId = this.#current()
    const iv = randomBytes(IV_BYTES)
    this.#p11.C_EncryptInit(session, gcm(iv, aad), this.#keks.get(kekId) as pkcs11js.Handle)
    const sealed = this.#p11.C_Encrypt(session, dataKey, Buffer.alloc(dataKey.length + TAG_BYTES))
    return { kekId, wrapped: Buffer.concat([iv, sealed]) }
  }

  async unwrap(kekId: string, wrapped: Buffer, aad: Buffer): Promise<Buffer> {
    const kek = this.#kek(kekId)
    if (!kek) throw new Pkcs11Error(`key-encryption key ${kekId} is not in the token`)
    if (wrapped.length < IV_BYTES + TAG_BYTES) throw new Pkcs11Error('wrapped key too short')
    const session = this.#session
    this.#p11.C_DecryptInit(session, gcm(wrapped.subarray(0, IV_BYTES), aad), kek)
    return this.#p11.C_Decrypt(session, wrapped.subarray(IV_BYTES), Buffer.alloc(wrapped.length))
  }

  /** Generates the next KEK in the token (`hsm-kek-N`, AES-256, never extractable) and makes it current. */
  async rotate(): Promise<string> {
    this.#readKeks()
    const next = Math.max(0, ...[...this.#keks.keys()].map((id) => this.#kekNumber(id))) + 1
    const kekId = `${this.#kekLabel}-${next}`
    const handle = this.#p11.C_GenerateKey(this.#session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_LABEL, value: kekId },
      ...inTokenPrivate,
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
    ])
    this.#keks.set(kekId, handle)
    return kekId
  }

  async generateSigningKey(algorithm: SigningAlgorithm): Promise<StoredSigningKey> {
    const curve = curves[algorithm]
    const id = randomBytes(16)
    const { publicKey } = this.#p11.C_GenerateKeyPair(
      this.#session,
      { mechanism: curve.generate },
      [
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_VERIFY, value: true },
        { type: pkcs11js.CKA_EC_PARAMS, value: curve.params },
        { type: pkcs11js.CKA_ID, value: id },
        { type: pkcs11js.CKA_LABEL, value: SIGNING_KEY_LABEL },
      ],
      [
        ...inTokenPrivate,
        { type: pkcs11js.CKA_SIGN, value: true },
        { type: pkcs11js.CKA_ID, value: id },
        { type: pkcs11js.CKA_LABEL, value: SIGNING_KEY_LABEL },
      ],
    )
    const [point] = this.#p11.C_GetAttributeValue(this.#session, publicKey, [{ type: pkcs11js.CKA_EC_POINT }])
    return { kekId: IN_TOKEN, privateKey: id, publicKey: spki(curve.spkiPrefix, point?.value as Buffer) }
  }

  /**
   * Signs with the token's private key of this CKA_ID. A probe signature is checked against the stored public key
   * first: a database row pointing at another key of the token would otherwise sign what nobody can verify.
   */
  async signer(algorithm: SigningAlgorithm, stored: StoredSigningKey): Promise<Signer> {
    if (stored.kekId !== IN_TOKEN) {
      throw new Pkcs11Error(
        `a signing key wrapped by ${stored.kekId} is not in the token: make new ones with \`strongroom keys rotate --signing-keys\``,
      )
    }
    const find = () => {
      this.#p11.C_FindObjectsInit(this.#session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_ID, value: stored.privateKey },
      ])
      const [found] = this.#p11.C_FindObjects(this.#session, 1)
      this.#p11.C_FindObjectsFinal(this.#session)
      if (!found) throw new Pkcs11Error(`signing key ${stored.privateKey.toString('hex')} is not in the token`)
      return { handle: found, epoch: this.#library.epoch }
    }
    let privateKey = find()
    // A handle lasts as long as the library's epoch: after a re-initialization the key is found again.
    const handle = () => {
      if (privateKey.epoch !== this.#library.epoch) privateKey = find()
      return privateKey.handle
    }
    const sign: Signer =
      algorithm === 'ed25519'
        ? (message) => {
            this.#p11.C_SignInit(this.#session, { mechanism: CKM_EDDSA }, handle())
            return this.#p11.C_Sign(this.#session, Buffer.from(message), Buffer.alloc(64))
          }
        : (message) => {
            this.#p11.C_SignInit(this.#session, { mechanism: pkcs11js.CKM_ECDSA }, handle())
            const digest = createHash('sha256').update(message).digest()
            return this.#p11.C_Sign(this.#session, digest, Buffer.alloc(64))
          }
    const probe = randomBytes(32)
    const publicKey = createPublicKey({ key: stored.publicKey, format: 'der', type: 'spki' })
    const probeSignature = sign(probe)
    let verified = false
    try {
      verified =
        algorithm === 'ed25519'
          ? verify(null, probe, publicKey, probeSignature)
          : verify('sha256', probe, { key: publicKey, dsaEncoding: 'ieee-p1363' }, probeSignature)
    } catch {
      // A stored public key of another type than the algorithm: no match either.
    }
    if (!verified) throw new Pkcs11Error('the token signs with a key that does not match the stored public key')
    return sign
  }

  /** A key made in the token never leaves it, so nothing is re-wrapped; one wrapped by a key file cannot be read. */
  async rewrapSigningKey(stored: StoredSigningKey): Promise<StoredSigningKey | undefined> {
    if (stored.kekId === IN_TOKEN) return undefined
    throw new Pkcs11Error(`a signing key wrapped by ${stored.kekId} is not in the token`)
  }

  /** Ends this provider's session; the library and its login stay for the process's other providers. */
  async close(): Promise<void> {
    if (this.#epoch === this.#library.epoch) this.#p11.C_CloseSession(this.#openedSession)
  }

  #current(): string {
    const newest = Math.max(...[...this.#keks.keys()].map((id) => this.#kekNumber(id)))
    return `${this.#kekLabel}-${newest}`
  }

  #kekNumber(kekId: string): number {
    return Number(this.#kekPattern.exec(kekId)?.[1] ?? 0)
  }

  #readKeks(): void {
    this.#p11.C_FindObjectsInit(this.#session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }])
    const handles = this.#p11.C_FindObjects(this.#session, 10_000)
    this.#p11.C_FindObjectsFinal(this.#session)
    const keks = new Map<string, pkcs11js.Handle>()
    for (const handle of handles) {
      const [label] = this.#p11.C_GetAttributeValue(this.#session, handle, [{ type: pkcs11js.CKA_LABEL }])
      const name = label?.value?.toString('utf8') ?? ''
      if (this.#kekPattern.test(name)) keks.set(name, handle)
    }
    this.#keks = keks
  }
}

/** A key object that stays in the token and cannot be read out of it, by anyone. */
const inTokenPrivate = [
  { type: pkcs11js.CKA_TOKEN, value: true },
  { type: pkcs11js.CKA_PRIVATE, value: true },
  { type: pkcs11js.CKA_SENSITIVE, value: true },
  { type: pkcs11js.CKA_EXTRACTABLE, value: false },
]

/** A slot handle is the CK_SLOT_ID in the platform's byte order (CK_ULONG: 8 bytes on 64-bit Linux). */
function slotId(slot: Buffer): number {
  return slot.length === 8 ? Number(slot.readBigUInt64LE()) : slot.readUInt32LE()
}

function gcm(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  const parameter: pkcs11js.GcmParams = {
    type: pkcs11js.CK_PARAMS_AES_GCM,
    iv,
    ivBits: IV_BYTES * 8,
    aad,
    tagBits: TAG_BYTES * 8,
  }
  return { mechanism: pkcs11js.CKM_AES_GCM, parameter }
}

/** CKA_EC_POINT is the point as a DER OCTET STRING; the SubjectPublicKeyInfo wants the bare point. */
function spki(prefix: Buffer, ecPoint: Buffer): Buffer {
  const length = ecPoint[1] as number
  return Buffer.concat([prefix, ecPoint.subarray(ecPoint.length - length)])
}
