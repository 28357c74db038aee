/**
 * How a route of the wire contract becomes a request. Apart from the contract, which holds the schemas: the clients
 * import this and the contract's types only, so that no schema (nor TypeBox) goes into a browser's bundle.
 */
import type { WireRoute } from './wire-contract.ts'

/** The `:name` parameters of a route's path. */
export type RouteParams<R extends string> = R extends `${string}:${infer Name}/${infer Rest}`
  ? Name | RouteParams<`/${Rest}`>
  : R extends `${string}:${infer Name}`
    ? Name
    : never

/** A route's path with its parameters filled in (each URL-encoded), and its method. */
export function routeRequest(route: WireRoute, params: Record<string, string>): { method: string; path: string } {
  const [method, pattern] = route.split(' ') as [string, string]
  return { method, path: pattern.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(params[name] as string)) }
}

/**
 * A route's query as its query string (without `?`; empty for none): each parameter that has a value, in the order
 * given, numbers in decimal and strings URL-encoded; an undefined one is left out, so that the server applies its
 * default.
 */
export function queryString(query: object): string {
  const parameters = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) parameters.set(name, String(value))
  }
  // toString, not size, which older URLSearchParams implementations (Safari before 17) lack.
  return parameters.toString()
}
