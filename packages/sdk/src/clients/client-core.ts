import type { JSONWebKeySet } from 'jose'
import type { Credentials } from '../credentials.ts'
import { queryString, type RouteParams, routeRequest } from '../route-path.ts'
import { type ClientOptions, Transport } from '../transport.ts'
import type { WireAnswer, WireBody, WireQuery, WireRoute } from '../wire-contract.ts'

/**
 * What a call of a route sends: its path's parameters (when it has any), and the query and the JSON body its contract
 * schemas type (none for a route that reads or takes none).
 */
export type RouteCall<R extends WireRoute> = ([RouteParams<R>] extends [never]
  ? { params?: never }
  : { params: Record<RouteParams<R>, string> }) & { query?: WireQuery<R>; body?: WireBody<R> }

/**
 * What every client has, whoever it acts for: its transport, and the calls any principal may make. The device, staff
 * and backend clients add the calls their principal may make, as mixins over this class (see `ClientClass`).
 */
export class ClientCore {
  readonly transport: Transport

  /** Options for a transport of its own, or a transport already made (to act for the same caller, say). */
  constructor(options: ClientOptions | Transport) {
    this.transport = options instanceof Transport ? options : new Transport(options)
  }

  /** How this client authenticates: a device key (replaced by `rekey`), a staff token or a client assertion. */
  get credentials(): Credentials {
    return this.transport.credentials
  }

  /** The server in use. */
  get baseUrl(): string {
    return this.transport.baseUrl
  }

  /** Any API call, for routes no method covers (see `Transport.request`). */
  request<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.transport.request<T>(method, path, body)
  }

  /**
   * A route of the wire contract (`METHOD /path`, as the access table names it), answering with the `Static` type of
   * the schema the server declares for it: the methods of the clients call their routes through this. The query is
   * written as the query string (see `queryString`), the body as JSON.
   */
  call<R extends WireRoute>(
    route: R,
    ...[request]: [RouteParams<R>] extends [never] ? [RouteCall<R>?] : [RouteCall<R>]
  ): Promise<WireAnswer<R>> {
    const { method, path } = routeRequest(route, request?.params ?? {})
    const query = queryString(request?.query ?? {})
    return this.transport.request<WireAnswer<R>>(method, query ? `${path}?${query}` : path, request?.body)
  }

  /** Who the caller is: a device, a staff member or a bank backend, and of which bank. */
  me() {
    return this.call('GET /v1/me')
  }

  /**
   * The keys that verify consent receipts (`/.well-known/jwks.json`): pass them to `verifyConsentReceipt`. With a
   * bank's id, only the keys that sign for that bank (the key set it pins).
   */
  receiptKeys(tenant?: string) {
    const query = queryString({ tenant } satisfies WireQuery<'GET /.well-known/jwks.json'>)
    return this.request<JSONWebKeySet>('GET', `/.well-known/jwks.json${query ? `?${query}` : ''}`)
  }

  /** A consent request: a device its customer's, staff and backends (`consents:write`) any of the bank's. */
  getConsent(consentId: string) {
    return this.call('GET /v1/consents/:consentId', { params: { consentId } })
  }
}

/**
 * A class a mixin extends: TypeScript's mixin pattern wants constructors of `any[]`. Each mixin is a function from such
 * a class to a subclass with one principal's calls, so that a call two principals share is written once.
 */
// biome-ignore lint/suspicious/noExplicitAny: the mixin pattern requires a constructor of any[]
export type ClientClass = new (...args: any[]) => ClientCore
