import type { FastifyRequest } from 'fastify'
import type { Principal } from './principal.ts'
import { Problem } from './problems.ts'

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal
    /** The risk flags of the device's integrity token, when the gate checked one. */
    integrityFlags?: string[]
  }
}

/** The URL a DPoP proof must name for this request: scheme, host and path, as the client addressed us. */
export function requestHtu(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}${request.url.split('?')[0]}`
}

export function singleHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value
}

/** The principal that the access hook put on the request; routes behind a staff or member rule always have one. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Problem('auth/missing-credentials')
  return request.principal
}
