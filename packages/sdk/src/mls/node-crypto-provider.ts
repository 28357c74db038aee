import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  randomFillSync,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto'
import { AeadId, Dhkem, HkdfSha256Native, KemId, XCurveDhkemPrimitives } from '@hpke/common'
import { type AeadInterface, CipherSuite } from '@hpke/core'
import {
  type Ciphersuite,
  type CiphersuiteImpl,
  type CryptoProvider,
  defaultCryptoProvider,
  type Hash,
  type Hpke,
  type Kdf,
  type Signature,
} from 'ts-mls'
import type { Aead } from 'ts-mls/crypto/aead.js'
import { makeGenericHpke } from 'ts-mls/crypto/implementation/hpke.js'

/**
 * A ts-mls crypto provider on Node's own crypto. The default provider goes through WebCrypto and re-imports every key
 * on every call (an Ed25519 signature costs about 0.86 ms that way); here keys become `KeyObject`s once and are cached,
 * and hashing, HMAC, HKDF and AES-GCM run synchronously in OpenSSL. HPKE (welcomes, and the path secrets of every
 * commit: one encryption per member a commit reaches) keeps the protocol of `@hpke/core`, the library ts-mls uses, with
 * its primitives on OpenSSL too for the default suite (X25519, HKDF-SHA256, AES-128-GCM); other suites keep ts-mls's
 * HPKE with OpenSSL's AES-GCM. Node only: browsers keep the default provider.
 */
export const nodeCryptoProvider: CryptoProvider = {
  async getCiphersuiteImpl(suite: Ciphersuite): Promise<CiphersuiteImpl> {
    const base = await defaultCryptoProvider.getCiphersuiteImpl(suite)
    const hashName = nodeHashName(suite.hash)
    return {
      name: suite.name,
      hash: nodeHash(hashName),
      kdf: nodeKdf(hashName),
      signature: nodeSignature(suite.signature),
      hpke: await nodeHpke(suite.hpke, base.hpke),
      rng: { randomBytes: randomPool },
    }
  },
}

const RANDOM_BLOCK = 4096
let randomBlock = Buffer.alloc(0)
let randomOffset = 0

/**
 * Random bytes from OpenSSL's generator, drawn a block at a time as Node's own `randomUUID` does: MLS asks for four
 * (the reuse guard) on every message sent, and each call into OpenSSL costs about 5 us whatever its size. Bytes are
 * wiped from the block as they are handed out, so none is ever given twice or left behind.
 */
function randomPool(length: number): Uint8Array {
  if (length > RANDOM_BLOCK / 8) return new Uint8Array(randomBytes(length))
  if (randomOffset + length > randomBlock.length) {
    randomBlock = randomFillSync(Buffer.allocUnsafeSlow(RANDOM_BLOCK))
    randomOffset = 0
  }
  const taken = randomBlock.subarray(randomOffset, randomOffset + length)
  const bytes = new Uint8Array(taken)
  taken.fill(0)
  randomOffset += length
  return bytes
}

function nodeHashName(hash: Ciphersuite['hash']): HashName {
  return hash === 'SHA-256' ? 'sha256' : hash === 'SHA-384' ? 'sha384' : 'sha512'
}

function nodeHash(name: string): Hash {
  const mac = (key: Uint8Array, data: Uint8Array) => new Uint8Array(createHmac(name, key).update(data).digest())
  return {
    async digest(data) {
      return new Uint8Array(createHash(name).update(data).digest())
    },
    async mac(key, data) {
      return mac(key, data)
    },
    async verifyMac(key, expected, data) {
      const actual = mac(key, data)
      return actual.length === expected.length && timingSafeEqual(actual, expected)
    },
  }
}

/**
 * HKDF (RFC 5869) split into its two halves, because MLS and HPKE call Extract and Expand separately and Node's `hkdf`
 * only offers both at once. Both halves are HMAC from OpenSSL; the RFC 9420 crypto-basics, key-schedule and welcome
 * vectors test them.
 */
type HashName = 'sha256' | 'sha384' | 'sha512'
const HASH_SIZES: Record<HashName, number> = { sha256: 32, sha384: 48, sha512: 64 }

function hkdfExtract(name: HashName, salt: Uint8Array, ikm: Uint8Array): Buffer {
  return createHmac(name, salt.length > 0 ? salt : Buffer.alloc(HASH_SIZES[name]))
    .update(ikm)
    .digest()
}

function hkdfExpand(name: HashName, prk: Uint8Array, info: Uint8Array, length: number): Buffer {
  const size = HASH_SIZES[name]
  const blocks = Math.ceil(length / size)
  if (blocks > 255) throw new RangeError('HKDF-Expand length exceeds 255 hash lengths')
  const okm = Buffer.alloc(blocks * size)
  let previous = Buffer.alloc(0)
  for (let i = 0; i < blocks; i++) {
    previous = createHmac(name, prk)
      .update(previous)
      .update(info)
      .update(Uint8Array.of(i + 1))
      .digest()
    previous.copy(okm, i * size)
  }
  return okm.subarray(0, length)
}

function nodeKdf(name: HashName): Kdf {
  return {
    size: HASH_SIZES[name],
    async extract(salt, ikm) {
      return new Uint8Array(hkdfExtract(name, salt, ikm))
    },
    async expand(prk, info, length) {
      return new Uint8Array(hkdfExpand(name, prk, info, length))
    },
  }
}

const TAG_LENGTH = 16

/**
 * Keys already imported, by their bytes. Bounded: a busy server sees many members' public keys. Importing is what
 * costs: OpenSSL 3 decodes a PKCS#8 private key in about 390 us and an SPKI public key in about 80 us (a JWK public key
 * in about 12 us), against 40 us for an X25519 agreement or an Ed25519 signature.
 */
class KeyCache<T> {
  readonly #keys = new Map<string, T>()
  constructor(readonly limit: number) {}

  get(bytes: Uint8Array, make: () => T): T {
    const found = this.peek(bytes)
    if (found !== undefined) return found
    const made = make()
    this.set(bytes, made)
    return made
  }

  peek(bytes: Uint8Array): T | undefined {
    const id = Buffer.from(bytes).toString('base64')
    const found = this.#keys.get(id)
    if (found !== undefined) {
      // Refresh its place, so the least recently used key is evicted first.
      this.#keys.delete(id)
      this.#keys.set(id, found)
    }
    return found
  }

  set(bytes: Uint8Array, value: T): void {
    const id = Buffer.from(bytes).toString('base64')
    this.#keys.delete(id)
    if (this.#keys.size >= this.limit) this.#keys.delete(this.#keys.keys().next().value as string)
    this.#keys.set(id, value)
  }
}

/** OpenSSL's AES-GCM: every application message's AEAD, and HPKE's. */
function nodeAesGcm(cipher: 'aes-128-gcm' | 'aes-256-gcm'): Aead {
  return {
    async encrypt(key, nonce, aad, plaintext) {
      const encryptor = createCipheriv(cipher, key, nonce, { authTagLength: TAG_LENGTH })
      if (aad.length > 0) encryptor.setAAD(aad, { plaintextLength: plaintext.length })
      const body = encryptor.update(plaintext)
      encryptor.final()
      return new Uint8Array(Buffer.concat([body, encryptor.getAuthTag()]))
    },
    async decrypt(key, nonce, aad, ciphertext) {
      if (ciphertext.length < TAG_LENGTH) throw new AeadError()
      const decryptor = createDecipheriv(cipher, key, nonce, { authTagLength: TAG_LENGTH })
      decryptor.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_LENGTH))
      const body = ciphertext.subarray(0, ciphertext.length - TAG_LENGTH)
      if (aad.length > 0) decryptor.setAAD(aad, { plaintextLength: body.length })
      try {
        return new Uint8Array(Buffer.concat([decryptor.update(body), decryptor.final()]))
      } catch {
        throw new AeadError()
      }
    },
  }
}

/** The HPKE for a suite: on OpenSSL for X25519 with HKDF-SHA256 and AES-GCM, else ts-mls's with OpenSSL's AES-GCM. */
async function nodeHpke(algorithm: Ciphersuite['hpke'], base: Hpke): Promise<Hpke> {
  if (algorithm.aead === 'CHACHA20POLY1305') return base
  const aead = nodeAesGcm(algorithm.aead === 'AES128GCM' ? 'aes-128-gcm' : 'aes-256-gcm')
  if (algorithm.kem !== 'DHKEM-X25519-HKDF-SHA256' || algorithm.kdf !== 'HKDF-SHA256') {
    return {
      ...base,
      encryptAead: (key, nonce, aad, plaintext) => aead.encrypt(key, nonce, aad ?? new Uint8Array(), plaintext),
      decryptAead: (key, nonce, aad, ciphertext) => aead.decrypt(key, nonce, aad ?? new Uint8Array(), ciphertext),
    }
  }
  const suite = new CipherSuite({
    kem: new NodeDhkemX25519(),
    kdf: new NodeHkdfSha256(),
    aead: new NodeHpkeAesGcm(aead, algorithm.aead),
  })
  return makeGenericHpke(algorithm, aead, suite)
}

const bytesOf = (data: ArrayBufferLike | ArrayBufferView) =>
  ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data)
/** A fresh ArrayBuffer holding exactly these bytes (a Buffer may be a view into a shared pool). */
const arrayBufferOf = (bytes: Uint8Array): ArrayBuffer => new Uint8Array(bytes).buffer

/** `@hpke/core`'s HKDF-SHA256 (its labels and key schedule) with Extract and Expand in OpenSSL. */
class NodeHkdfSha256 extends HkdfSha256Native {
  override async extract(salt: ArrayBufferLike | ArrayBufferView, ikm: ArrayBufferLike | ArrayBufferView) {
    return arrayBufferOf(hkdfExtract('sha256', bytesOf(salt), bytesOf(ikm)))
  }
  override async expand(prk: ArrayBufferLike | ArrayBufferView, info: ArrayBufferLike | ArrayBufferView, len: number) {
    return arrayBufferOf(hkdfExpand('sha256', bytesOf(prk), bytesOf(info), len))
  }
  override async extractAndExpand(
    salt: ArrayBufferLike | ArrayBufferView,
    ikm: ArrayBufferLike | ArrayBufferView,
    info: ArrayBufferLike | ArrayBufferView,
    len: number,
  ) {
    return arrayBufferOf(hkdfExpand('sha256', hkdfExtract('sha256', bytesOf(salt), bytesOf(ikm)), bytesOf(info), len))
  }
}

/** `@hpke/core`'s AEAD interface over OpenSSL's AES-GCM. */
class NodeHpkeAesGcm implements AeadInterface {
  readonly id: AeadId
  readonly keySize: number
  readonly nonceSize = 12
  readonly tagSize = TAG_LENGTH
  readonly #aead: Aead

  constructor(aead: Aead, algorithm: 'AES128GCM' | 'AES256GCM') {
    this.#aead = aead
    this.id = algorithm === 'AES128GCM' ? AeadId.Aes128Gcm : AeadId.Aes256Gcm
    this.keySize = algorithm === 'AES128GCM' ? 16 : 32
  }

  createEncryptionContext(key: ArrayBufferLike | ArrayBufferView) {
    const raw = Uint8Array.from(bytesOf(key))
    const aead = this.#aead
    type Bytes = ArrayBufferLike | ArrayBufferView
    return {
      seal: async (iv: Bytes, data: Bytes, aad: Bytes) =>
        arrayBufferOf(await aead.encrypt(raw, bytesOf(iv), bytesOf(aad), bytesOf(data))),
      open: async (iv: Bytes, data: Bytes, aad: Bytes) =>
        arrayBufferOf(await aead.decrypt(raw, bytesOf(iv), bytesOf(aad), bytesOf(data))),
    }
  }
}

const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
const x25519PrivateKeys = new KeyCache<KeyObject>(1024)
const x25519PublicKeys = new KeyCache<KeyObject>(16_384)
/** Key pairs made here (HPKE's ephemeral keys, one per recipient of a commit's path): no import needed to use them. */
const x25519Generated = new KeyCache<{ privateKey: KeyObject; publicKey: Uint8Array }>(256)
const x25519Private = (raw: Uint8Array) =>
  x25519Generated.peek(raw)?.privateKey ??
  x25519PrivateKeys.get(raw, () =>
    createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' }),
  )
const x25519Public = (raw: Uint8Array) =>
  x25519PublicKeys.get(raw, () =>
    createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' }),
  )

/**
 * X25519 (RFC 7748) in OpenSSL, in the shape `@hpke/core`'s Montgomery-curve KEM takes (it uses these three members;
 * the curve arithmetic it would otherwise do in JavaScript is OpenSSL's here). Fresh buffers throughout: the KEM hands
 * out `.buffer` of what it gets.
 */
const OPENSSL_X25519 = {
  utils: {
    async randomSecretKey() {
      const { privateKey } = generateKeyPairSync('x25519')
      const jwk = privateKey.export({ format: 'jwk' })
      const secret = new Uint8Array(Buffer.from(jwk.d as string, 'base64url'))
      x25519Generated.set(secret, { privateKey, publicKey: new Uint8Array(Buffer.from(jwk.x as string, 'base64url')) })
      return secret
    },
  },
  getPublicKey(secretKey: Uint8Array): Uint8Array {
    const made = x25519Generated.peek(secretKey)
    if (made) return new Uint8Array(made.publicKey)
    const jwk = createPublicKey(x25519Private(secretKey)).export({ format: 'jwk' })
    return new Uint8Array(Buffer.from(jwk.x as string, 'base64url'))
  },
  getSharedSecret(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
    const shared = diffieHellman({ privateKey: x25519Private(secretKey), publicKey: x25519Public(publicKey) })
    // RFC 9180, section 7.1.4: an all-zero result (a small-order public key) is refused. OpenSSL refuses it too.
    if (shared.every((byte) => byte === 0)) throw new Error('X25519 gave the all-zero value')
    return new Uint8Array(shared)
  },
} as unknown as ConstructorParameters<typeof XCurveDhkemPrimitives>[2]

/** `@hpke/core`'s DHKEM(X25519, HKDF-SHA256) with X25519 and HKDF in OpenSSL. */
class NodeDhkemX25519 extends Dhkem {
  override readonly secretSize = 32
  override readonly encSize = 32
  override readonly publicKeySize = 32
  override readonly privateKeySize = 32

  constructor() {
    const kdf = new NodeHkdfSha256()
    super(KemId.DhkemX25519HkdfSha256, new XCurveDhkemPrimitives('X25519', 32, OPENSSL_X25519, kdf), kdf)
  }
}

/** A failed authenticated decryption; says nothing about the key or the data. */
export class AeadError extends Error {
  constructor() {
    super('authenticated decryption failed')
    this.name = 'AeadError'
  }
}

// DER prefixes that turn the raw private keys MLS serializes into the PKCS#8 form OpenSSL imports.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const P256_PKCS8_PREFIX = Buffer.from('3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420', 'hex')

function nodeSignature(algorithm: Ciphersuite['signature']): Signature {
  if (algorithm !== 'Ed25519' && algorithm !== 'P256') {
    throw new TypeError(`the Node crypto provider signs with Ed25519 or P256, not ${algorithm}`)
  }
  const ed25519 = algorithm === 'Ed25519'
  const privateKeys = new KeyCache<KeyObject>(1024)
  const publicKeys = new KeyCache<KeyObject>(16_384)
  const privateKey = (raw: Uint8Array) =>
    privateKeys.get(raw, () => {
      // A 32-byte value is the raw key MLS uses; anything longer is already PKCS#8 (WebCrypto's export format).
      const der = raw.length === 32 ? Buffer.concat([ed25519 ? ED25519_PKCS8_PREFIX : P256_PKCS8_PREFIX, raw]) : raw
      return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' })
    })
  // As JWKs, which OpenSSL takes several times faster than SPKI; P-256 keys are uncompressed points (0x04 || x || y).
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')
  const publicKey = (raw: Uint8Array) =>
    publicKeys.get(raw, () => {
      if (!ed25519 && (raw.length !== 65 || raw[0] !== 4)) throw new TypeError('not an uncompressed P-256 point')
      return createPublicKey({
        key: ed25519
          ? { kty: 'OKP', crv: 'Ed25519', x: b64(raw) }
          : { kty: 'EC', crv: 'P-256', x: b64(raw.subarray(1, 33)), y: b64(raw.subarray(33, 65)) },
        format: 'jwk',
      })
    })
  // MLS signs P-256 as DER-encoded ECDSA over SHA-256 (RFC 9420, section 5.1.2); Ed25519 takes no digest.
  const digest = ed25519 ? null : 'sha256'
  return {
    async sign(signKey, message) {
      return new Uint8Array(sign(digest, message, { key: privateKey(signKey), dsaEncoding: 'der' }))
    },
    async verify(key, message, signature) {
      try {
        return verify(digest, message, { key: publicKey(key), dsaEncoding: 'der' }, signature)
      } catch {
        return false
      }
    },
    async keygen() {
      if (ed25519) {
        const pair = generateKeyPairSync('ed25519')
        const jwk = pair.privateKey.export({ format: 'jwk' })
        return {
          signKey: new Uint8Array(Buffer.from(jwk.d as string, 'base64url')),
          publicKey: new Uint8Array(Buffer.from(jwk.x as string, 'base64url')),
        }
      }
      const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      const jwk = pair.privateKey.export({ format: 'jwk' })
      const x = Buffer.from(jwk.x as string, 'base64url')
      const y = Buffer.from(jwk.y as string, 'base64url')
      return {
        signKey: new Uint8Array(Buffer.from(jwk.d as string, 'base64url')),
        publicKey: new Uint8Array(Buffer.concat([Uint8Array.of(4), x, y])),
      }
    },
  }
}
