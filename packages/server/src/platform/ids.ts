import { createHash, randomBytes } from 'node:crypto'

/** A new random id with a prefix naming its kind (`cnv_…`, `dev_…`): 128 bits, URL-safe, unguessable. */
export function newId(prefix: string): string {
  return newIds(prefix, 1)[0] as string
}

/** `count` new ids of one kind, from one read of the random source (a batch of messages: one call, not one each). */
export function newIds(prefix: string, count: number): string[] {
  const random = randomBytes(16 * count)
  const ids: string[] = []
  for (let i = 0; i < count; i++) ids.push(`${prefix}_${random.toString('base64url', 16 * i, 16 * i + 16)}`)
  return ids
}

/** A bearer secret: 256 random bits with a prefix that lets secret scanners recognise a leaked one. */
export function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`
}

/**
 * Secrets with 128 bits or more of entropy are stored as their SHA-256: a stolen table cannot be replayed, and
 * looking a secret up by its hash compares nothing secret in variable time.
 */
export function secretHash(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest()
}
