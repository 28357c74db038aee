import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  randomFillSync,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto'
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

/**
 * A ts-mls crypto provider on Node's own crypto. The default provider goes through WebCrypto and re-imports every key
 * on every call (an Ed25519 signature costs about 0.86 ms that way); here keys become `KeyObject`s once and are cached,
 * and hashing, HMAC, HKDF and the message AEAD run synchronously in OpenSSL. HPKE (used for welcomes and path secrets,
 * not per message) stays with ts-mls's default. Node only: browsers keep the default provider.
 */
export const nodeCryptoProvider: CryptoProvider = {
  async getCiphersuiteImpl(suite: Ciphersuite): Promise<CiphersuiteImpl> {
    const base = await defaultCryptoProvider.getCiphersuiteImpl(suite)
    const hashName = nodeHashName(suite.hash)
    const kdf = nodeKdf(hashName)
    return {
      name: suite.name,
      hash: nodeHash(hashName),
      kdf,
      signature: nodeSignature(suite.signature),
      hpke: withNodeAead(base.hpke, suite.hpke.aead),
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

function nodeHashName(hash: Ciphersuite['hash']): 'sha256' | 'sha384' | 'sha512' {
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
 * HKDF (RFC 5869) split into its two halves, because MLS calls Extract and Expand separately and Node's `hkdf` only
 * offers both at once. Both halves are HMAC from OpenSSL; the RFC 9420 crypto-basics and key-schedule vectors test them.
 */
function nodeKdf(name: string): Kdf {
  const size = createHash(name).digest().length
  return {
    size,
    async extract(salt, ikm) {
      return new Uint8Array(
        createHmac(name, salt.length > 0 ? salt : Buffer.alloc(size))
          .update(ikm)
          .digest(),
      )
    },
    async expand(prk, info, length) {
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
      return new Uint8Array(okm.subarray(0, length))
    },
  }
}

const TAG_LENGTH = 16

/** Replaces the HPKE object's raw AEAD (every application message goes through it) with OpenSSL's AES-GCM. */
function withNodeAead(hpke: Hpke, aead: Ciphersuite['hpke']['aead']): Hpke {
  if (aead === 'CHACHA20POLY1305') return hpke
  const cipher = aead === 'AES128GCM' ? 'aes-128-gcm' : 'aes-256-gcm'
  return {
    ...hpke,
    async encryptAead(key, nonce, aad, plaintext) {
      const encryptor = createCipheriv(cipher, key, nonce, { authTagLength: TAG_LENGTH })
      if (aad && aad.length > 0) encryptor.setAAD(aad, { plaintextLength: plaintext.length })
      const body = encryptor.update(plaintext)
      encryptor.final()
      return new Uint8Array(Buffer.concat([body, encryptor.getAuthTag()]))
    },
    async decryptAead(key, nonce, aad, ciphertext) {
      if (ciphertext.length < TAG_LENGTH) throw new AeadError()
      const decryptor = createDecipheriv(cipher, key, nonce, { authTagLength: TAG_LENGTH })
      decryptor.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_LENGTH))
      const body = ciphertext.subarray(0, ciphertext.length - TAG_LENGTH)
      if (aad && aad.length > 0) decryptor.setAAD(aad, { plaintextLength: body.length })
      try {
        return new Uint8Array(Buffer.concat([decryptor.update(body), decryptor.final()]))
      } catch {
        throw new AeadError()
      }
    },
  }
}

/** A failed authenticated decryption; says nothing about the key or the data. */
export class AeadError extends Error {
  constructor() {
    super('authenticated decryption failed')
    this.name = 'AeadError'
  }
}

// DER prefixes that turn the raw keys MLS serializes into the PKCS#8 and SPKI forms OpenSSL imports.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const P256_PKCS8_PREFIX = Buffer.from('3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420', 'hex')
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex')

/** Keys already imported, by their bytes. Bounded: a busy server sees many members' public keys. */
class KeyCache {
  readonly #keys = new Map<string, KeyObject>()
  constructor(readonly limit: number) {}

  get(bytes: Uint8Array, make: () => KeyObject): KeyObject {
    const id = Buffer.from(bytes).toString('base64')
    let key = this.#keys.get(id)
    if (key) {
      // Refresh its place, so the least recently used key is evicted first.
      this.#keys.delete(id)
    } else {
      key = make()
      if (this.#keys.size >= this.limit) this.#keys.delete(this.#keys.keys().next().value as string)
    }
    this.#keys.set(id, key)
    return key
  }
}

function nodeSignature(algorithm: Ciphersuite['signature']): Signature {
  if (algorithm !== 'Ed25519' && algorithm !== 'P256') {
    throw new TypeError(`the Node crypto provider signs with Ed25519 or P256, not ${algorithm}`)
  }
  const ed25519 = algorithm === 'Ed25519'
  const privateKeys = new KeyCache(1024)
  const publicKeys = new KeyCache(16_384)
  const privateKey = (raw: Uint8Array) =>
    privateKeys.get(raw, () => {
      // A 32-byte value is the raw key MLS uses; anything longer is already PKCS#8 (WebCrypto's export format).
      const der = raw.length === 32 ? Buffer.concat([ed25519 ? ED25519_PKCS8_PREFIX : P256_PKCS8_PREFIX, raw]) : raw
      return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' })
    })
  const publicKey = (raw: Uint8Array) =>
    publicKeys.get(raw, () =>
      createPublicKey({
        key: Buffer.concat([ed25519 ? ED25519_SPKI_PREFIX : P256_SPKI_PREFIX, raw]),
        format: 'der',
        type: 'spki',
      }),
    )
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
