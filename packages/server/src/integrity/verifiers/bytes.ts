import { createHash, timingSafeEqual } from 'node:crypto'
import { AttestationError } from './verifier.ts'

// Node's base64 decoder skips characters it does not know; checking first keeps garbage from decoding to something.
const BASE64_TEXT = /^[A-Za-z0-9+/_-]+={0,2}$/

/** Decodes base64 or base64url, refusing anything else as `bad-format`. */
export function decodeBase64(text: string): Buffer {
  if (!BASE64_TEXT.test(text)) throw new AttestationError('bad-format')
  return Buffer.from(text, 'base64')
}

/** Challenges and client data as the app hashed them: a string counts as its UTF-8 bytes. */
export function asBytes(data: string | Uint8Array): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data)
}

export function sha256(...parts: Uint8Array[]): Buffer {
  const hash = createHash('sha256')
  for (const part of parts) hash.update(part)
  return hash.digest()
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}
