import type { Socket } from 'node:net'
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

/** The URL as the client addressed it: scheme and host from the Host (or trusted X-Forwarded-*) headers, and path. */
export function addressedUrl(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}${pathOf(request)}`
}

/**
 * The URL a DPoP proof must name for this request (RFC 9449 §4.3 check 9). With a public URL (always in production):
 * that URL and the request's path, never the Host or X-Forwarded-* headers, which the sender chooses, so a proof made
 * for another server cannot be replayed here with a matching Host (T390), and a proof for the public URL holds when
 * the load balancer forwards over plain http. A client that reaches a node directly at its own address (a failover
 * list of nodes) names that address: the address the connection arrived at, which no header sets. In dev without a
 * public URL, the URL the client addressed.
 */
export function requestHtu(request: FastifyRequest, publicUrl: string | undefined): string {
  if (publicUrl === undefined) return addressedUrl(request)
  const node = nodeAddress(request.raw.socket)
  return `${request.host === node ? `http://${node}` : publicUrl}${pathOf(request)}`
}

const pathOf = (request: FastifyRequest) => request.url.split('?')[0]

/** host:port of this node as the connection reached it (IPv4 as clients write it, IPv6 in brackets). */
function nodeAddress(socket: Socket): string | undefined {
  const { localAddress, localPort } = socket
  if (!localAddress) return undefined
  const address = localAddress.replace(/^::ffff:(?=\d+\.)/, '')
  return `${address.includes(':') ? `[${address}]` : address}:${localPort}`
}

export function singleHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value
}

/** The principal that the access hook put on the request; routes behind a staff or member rule always have one. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Problem('auth/missing-credentials')
  return request.principal
}
