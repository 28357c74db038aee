import { createHash, randomBytes } from 'node:crypto'
import canonicalize from 'canonicalize'
import { openAesGcm, sealAesGcm } from '../platform/keyring/aes-gcm.ts'

/** What a record says, in clear only inside the archive: who wrote what, or who joined and left. */
export type ArchiveContent = Record<string, unknown> & { text?: string }

function aad(tenantId: string, keyId: string, sourceRef: string): Buffer {
  return Buffer.from(`strongroom:archive:v1:${tenantId}:${keyId}:${sourceRef}`, 'utf8')
}

/**
 * Seals a record's content: a random salt joins it (so the digest in the chain cannot confirm a guess, before or after
 * erasure), its canonical JSON is digested and sealed with AES-256-GCM bound to tenant, key and record.
 */
export function sealContent(
  key: { id: string; key: Buffer },
  tenantId: string,
  sourceRef: string,
  content: ArchiveContent,
) {
  const plaintext = Buffer.from(
    canonicalize({ ...content, salt: randomBytes(16).toString('base64url') }) as string,
    'utf8',
  )
  const sealed = sealAesGcm(key.key, plaintext, aad(tenantId, key.id, sourceRef))
  return {
    key_id: key.id,
    sealed,
    content_hash: createHash('sha256').update(sealed).digest(),
    content_digest: createHash('sha256').update(plaintext).digest(),
  }
}

export function openContent(key: Buffer, tenantId: string, keyId: string, sourceRef: string, sealed: Uint8Array) {
  return JSON.parse(openAesGcm(key, sealed, aad(tenantId, keyId, sourceRef)).toString('utf8')) as ArchiveContent
}

/** The digest an exported record's content must have: SHA-256 of its canonical JSON (salt included). */
export function contentDigest(content: ArchiveContent): Buffer {
  return createHash('sha256')
    .update(canonicalize(content) as string, 'utf8')
    .digest()
}
