import { createHash, X509Certificate } from 'node:crypto'
import { checkServerIdentity, type PeerCertificate } from 'node:tls'
import { Agent, fetch as undiciFetch } from 'undici'
import type { PinSet } from './pin-set.ts'

/** The pin of a certificate: base64 SHA-256 of its SubjectPublicKeyInfo, as pin sets list them. */
export function spkiPin(certificateDer: Uint8Array): string {
  const spki = new X509Certificate(certificateDer).publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(spki).digest('base64')
}

/**
 * A fetch for Node that, on top of normal TLS verification, refuses a connection to a host of the pin set unless the
 * server's certificate or one in its chain carries a listed key. Hosts outside the set are not pinned. Pass it to
 * `new DeviceClient({ fetch: pinnedFetch(pins) })`.
 */
export function pinnedFetch(pins: PinSet, options: { ca?: string | string[] } = {}): typeof fetch {
  const dispatcher = new Agent({
    connect: {
      ...(options.ca ? { ca: options.ca } : {}),
      checkServerIdentity(host, certificate) {
        // First what TLS always checks (the name); pinning only narrows it.
        const nameError = checkServerIdentity(host, certificate)
        if (nameError) return nameError
        const allowed = pins.hosts[host]
        if (!allowed) return undefined
        const chain: PeerCertificate[] = []
        for (let cert: PeerCertificate | undefined = certificate; cert && !chain.includes(cert); ) {
          chain.push(cert)
          cert = (cert as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate
        }
        if (chain.some((cert) => allowed.includes(spkiPin(cert.raw)))) return undefined
        return new Error(`the certificate of ${host} matches no pinned key`)
      },
    },
  })
  return ((input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) =>
    undiciFetch(input as never, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch
}
