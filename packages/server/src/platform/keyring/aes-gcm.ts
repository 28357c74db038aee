import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

const IV_BYTES = 12
const TAG_BYTES = 16

/** AES-256-GCM from Node's crypto: `iv | ciphertext | tag`, with associated data that must match to decrypt. */
export function sealAesGcm(key: Buffer, plaintext: Uint8Array, aad: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(aad)
  return Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
}

/** Opens what sealAesGcm made; throws on any tampering, wrong key or wrong associated data. */
export function openAesGcm(key: Buffer, sealed: Uint8Array, aad: Buffer): Buffer {
  const data = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength)
  if (data.length < IV_BYTES + TAG_BYTES) throw new Error('sealed value too short')
  const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES))
  decipher.setAAD(aad)
  decipher.setAuthTag(data.subarray(data.length - TAG_BYTES))
  return Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()])
}
