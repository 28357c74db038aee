import type { ClientCore } from './clients/client-core.ts'
import { base64ToBytes, bytesToBase64 } from './encoding.ts'

/** What a secure conversation carries as an attachment: pictures a browser shows safely, and PDFs (no SVG: it runs script). */
export const ATTACHMENT_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf'] as const
export type AttachmentType = (typeof ATTACHMENT_TYPES)[number]

/** The server's default limit (`STRONGROOM_MAX_ATTACHMENT_BYTES`): 5 MiB a file. */
export const DEFAULT_MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024

/**
 * What the MLS message about an attachment carries: where its ciphertext is, and the key that opens it. Only the
 * group's members (the bank's archive among them) read this; the server stores the ciphertext and never the key.
 */
export interface AttachmentRef {
  /** The attachment's id on the server, in the conversation the message was sent in. */
  id: string
  /** AES-256-GCM key and 96-bit nonce, base64: fresh for this file alone. */
  key: string
  nonce: string
  /** SHA-256 of the ciphertext, base64url: checked before decrypting. */
  sha256: string
  name: string
  type: AttachmentType
  /** The file's size in bytes, before encryption. */
  size: number
}

/** Why a file could not be sent or opened; the message says what to do. */
export class AttachmentError extends Error {
  readonly code: 'too-large' | 'type-not-allowed' | 'tampered'

  constructor(code: AttachmentError['code'], message: string) {
    super(message)
    this.name = 'AttachmentError'
    this.code = code
  }
}

const MARKER = 'strongroom.attachment.v1'

/**
 * Encrypts a file on this device with a fresh key (AES-256-GCM, WebCrypto) and uploads the ciphertext to the
 * conversation; returns the reference to send to the group in an MLS message (`attachmentMessage`).
 *
 * @example
 * const ref = await uploadAttachment(client, conversationId, { name: 'statement.pdf', type: 'application/pdf', bytes })
 * await secure.send(conversationId, attachmentMessage(ref))
 */
export async function uploadAttachment(
  client: ClientCore,
  conversationId: string,
  file: { name: string; type: string; bytes: Uint8Array<ArrayBuffer> },
  options: { maxBytes?: number; expiresAt?: Date } = {},
): Promise<AttachmentRef> {
  const type = allowedType(file.type)
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_ATTACHMENT_BYTES
  if (file.bytes.length > maxBytes) {
    throw new AttachmentError('too-large', `This file is too big to send: the limit is ${megabytes(maxBytes)}.`)
  }
  const rawKey = crypto.getRandomValues(new Uint8Array(32))
  const nonce = crypto.getRandomValues(new Uint8Array(12))
  const key = await crypto.subtle.importKey('raw', rawKey, 'AES-GCM', false, ['encrypt'])
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce }, key, file.bytes))
  const sha256 = await digest(ciphertext)
  const stored = await client.call('POST /v1/conversations/:conversationId/attachments', {
    params: { conversationId },
    body: {
      ciphertext: bytesToBase64(ciphertext),
      ...(options.expiresAt ? { expiresAt: options.expiresAt.toISOString() } : {}),
    },
  })
  if (stored.sha256 !== sha256) throw new AttachmentError('tampered', 'The file was changed on its way. Send it again.')
  return {
    id: stored.id,
    key: bytesToBase64(rawKey),
    nonce: bytesToBase64(nonce),
    sha256,
    name: file.name.slice(0, 200),
    type,
    size: file.bytes.length,
  }
}

/**
 * Downloads an attachment's ciphertext, checks its SHA-256 against the reference, and decrypts it: a file changed on
 * the server (or another file put in its place) is refused.
 */
export async function downloadAttachment(
  client: ClientCore,
  conversationId: string,
  ref: AttachmentRef,
): Promise<Uint8Array<ArrayBuffer>> {
  const route = 'GET /v1/conversations/:conversationId/attachments/:attachmentId'
  const stored = await client.call(route, { params: { conversationId, attachmentId: ref.id } })
  const ciphertext = new Uint8Array(base64ToBytes(stored.ciphertext))
  if ((await digest(ciphertext)) !== ref.sha256) {
    throw new AttachmentError('tampered', 'This file was changed after it was sent, so it is not shown.')
  }
  const key = await crypto.subtle.importKey('raw', new Uint8Array(base64ToBytes(ref.key)), 'AES-GCM', false, [
    'decrypt',
  ])
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt({ name: 'AES-GCM', iv: new Uint8Array(base64ToBytes(ref.nonce)) }, key, ciphertext),
    )
  } catch {
    throw new AttachmentError('tampered', 'This file could not be opened, so it is not shown.')
  }
}

/** The text of the MLS message that hands an attachment to the group. */
export function attachmentMessage(ref: AttachmentRef): string {
  return JSON.stringify({ [MARKER]: ref })
}

/** The attachment a message's text refers to, or undefined for an ordinary text (or a reference not well formed). */
export function readAttachmentMessage(text: string): AttachmentRef | undefined {
  if (!text.startsWith(`{"${MARKER}":`)) return undefined
  try {
    const ref = (JSON.parse(text) as Record<string, Partial<AttachmentRef>>)[MARKER]
    const strings = [ref?.id, ref?.key, ref?.nonce, ref?.sha256, ref?.name]
    if (!ref || strings.some((s) => typeof s !== 'string') || !Number.isSafeInteger(ref.size)) return undefined
    if (!(ATTACHMENT_TYPES as readonly unknown[]).includes(ref.type)) return undefined
    return ref as AttachmentRef
  } catch {
    return undefined
  }
}

function allowedType(type: string): AttachmentType {
  if ((ATTACHMENT_TYPES as readonly string[]).includes(type)) return type as AttachmentType
  throw new AttachmentError('type-not-allowed', 'Only pictures (PNG, JPEG, GIF, WebP) and PDF files can be sent.')
}

async function digest(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = bytesToBase64(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)))
  return hash.replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}

const megabytes = (bytes: number) => `${Math.round((bytes / 1024 / 1024) * 10) / 10} MB`
