import { X509Certificate } from 'node:crypto'
import { bytesEqual } from './bytes.ts'
import { AttestationError } from './verifier.ts'

export interface ChainOptions {
  trustRoots: readonly X509Certificate[]
  at: Date
  /** Asked for each certificate's serial number, as lowercase hex without leading zeros. */
  isRevoked?: (serialNumber: string) => boolean
}

export function parseCertificate(der: Buffer): X509Certificate {
  try {
    return new X509Certificate(der)
  } catch {
    throw new AttestationError('bad-format')
  }
}

export function parseTrustRoots(pems: readonly string[]): X509Certificate[] {
  return pems.map((pem) => new X509Certificate(pem))
}

function withinValidity(certificate: X509Certificate, at: Date): boolean {
  const from = Date.parse(certificate.validFrom)
  const to = Date.parse(certificate.validTo)
  if (Number.isNaN(from) || Number.isNaN(to)) throw new AttestationError('bad-format')
  return from <= at.getTime() && at.getTime() <= to
}

function spki(certificate: X509Certificate): Buffer {
  return certificate.publicKey.export({ type: 'spki', format: 'der' })
}

function signedBy(certificate: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey)
  } catch {
    return false
  }
}

/**
 * Verifies a chain, leaf first, up to one of the trust roots. Each certificate must be signed by the next, which must
 * be a CA. The last one is either a trusted root's key itself (Android chains carry their root, and Google re-issued
 * its root certificate for the same key several times, so the key is what is trusted) or signed by a trusted root
 * (Apple's x5c stops below the root). Dates are checked on every certificate the trust rests on, with the caller's
 * clock; a trusted key's own certificate is replaced by the configured root's dates.
 */
export function verifyCertificateChain(chain: readonly X509Certificate[], options: ChainOptions): void {
  const last = chain.at(-1)
  if (last === undefined) throw new AttestationError('bad-format')
  const lastKey = spki(last)
  const anchorIsTrustedKey = options.trustRoots.filter((root) => bytesEqual(spki(root), lastKey))
  const belowAnchor = anchorIsTrustedKey.length > 0 ? chain.slice(0, -1) : chain
  for (const certificate of belowAnchor) {
    if (!withinValidity(certificate, options.at)) throw new AttestationError('certificate-expired')
  }
  for (let i = 0; i + 1 < chain.length; i++) {
    const [subject, issuer] = [chain[i], chain[i + 1]] as [X509Certificate, X509Certificate]
    if (!issuer.ca || !signedBy(subject, issuer)) throw new AttestationError('chain-invalid')
  }
  const anchors =
    anchorIsTrustedKey.length > 0
      ? anchorIsTrustedKey
      : options.trustRoots.filter((root) => root.ca && signedBy(last, root))
  if (anchors.length === 0) throw new AttestationError('root-untrusted')
  if (!anchors.some((root) => withinValidity(root, options.at))) throw new AttestationError('certificate-expired')
  const { isRevoked } = options
  if (isRevoked === undefined) return
  // Revocation lists (Google's attestation status list) write serials as lowercase hex without leading zeros.
  const serials = chain.map((certificate) => certificate.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''))
  if (serials.some((serial) => isRevoked(serial))) throw new AttestationError('certificate-revoked')
}
