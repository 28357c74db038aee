import { platformFetch } from './encoding.ts'
import { StrongroomError } from './errors.ts'
import { type RouteParams, routeRequest } from './route-path.ts'
import type { WireAnswer, WireBody, WireRoute } from './wire-contract.ts'

/** Where a request that needs no credentials goes. */
export interface PublicRequestOptions {
  baseUrl: string
  fetch?: typeof fetch
}

/** The contract's POST routes whose path has no parameters: those a request without credentials may name. */
type PublicRoute = {
  [R in WireRoute]: R extends `POST ${string}` ? ([RouteParams<R>] extends [never] ? R : never) : never
}[WireRoute]

/**
 * A POST that needs no credentials (a staff sign-in, the first steps of a pivot link, where the assertion or the
 * link token in the body is what the server checks): JSON in; the route's answer as the wire contract types it, or a
 * StrongroomError with the problem.
 */
export async function postWithoutCredentials<R extends PublicRoute>(
  options: PublicRequestOptions,
  route: R,
  body: WireBody<R>,
): Promise<WireAnswer<R>> {
  const { path } = routeRequest(route, {})
  const response = await (options.fetch ?? platformFetch)(options.baseUrl.replace(/\/+$/, '') + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const payload = await response.json()
  if (!response.ok) throw new StrongroomError(payload)
  return payload as WireAnswer<R>
}
