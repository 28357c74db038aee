import { WebhookPayloadError } from './errors.ts'

/**
 * Readers for untrusted webhook JSON: each returns the value in the expected shape or throws WebhookPayloadError with
 * the fixed `reason` given, so that a malformed payload never surfaces as a TypeError.
 */
export type JsonObject = Record<string, unknown>

export function objectIn(value: unknown, reason: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new WebhookPayloadError(reason)
  return value as JsonObject
}

/** An array, or an empty one when the field is absent (providers omit empty lists). */
export function listIn(value: unknown, reason: string): unknown[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw new WebhookPayloadError(reason)
  return value
}

export function textIn(value: unknown, reason: string): string {
  if (typeof value !== 'string' || value === '') throw new WebhookPayloadError(reason)
  return value
}

/** A JSON body, parsed; invalid JSON is a payload error, not a SyntaxError. */
export function parseJsonBody(rawBody: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(rawBody).toString('utf8'))
  } catch {
    throw new WebhookPayloadError('body is not JSON')
  }
}
