import { platformFetch } from './encoding.ts'
import { StrongroomError } from './errors.ts'

/** Where a request that needs no credentials goes. */
export interface PublicRequestOptions {
  baseUrl: string
  fetch?: typeof fetch
}

/**
 * A POST that needs no credentials (a staff sign-in, the first steps of a pivot link, where the assertion or the
 * link token in the body is what the server checks): JSON in; the JSON answer, or a StrongroomError with the problem.
 */
export async function postWithoutCredentials<T>(
  options: PublicRequestOptions,
  path: string,
  body: unknown,
): Promise<T> {
  const response = await (options.fetch ?? platformFetch)(options.baseUrl.replace(/\/+$/, '') + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const payload = await response.json()
  if (!response.ok) throw new StrongroomError(payload)
  return payload as T
}
