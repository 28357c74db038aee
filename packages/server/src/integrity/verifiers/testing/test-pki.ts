// @peculiar/x509 resolves its services through tsyringe, which needs this polyfill loaded first.
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'

/** A throwaway PKI for tests: a root, intermediates and leaves with whatever extensions a test needs. */

x509.cryptoProvider.set(webcrypto as unknown as Crypto)

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
const DAY = 24 * 60 * 60 * 1000

/** The clock tests verify at; certificates are valid a year either side unless a test says otherwise. */
export const TEST_NOW = new Date('2026-01-15T12:00:00Z')

export interface TestCertificate {
  name: string
  keys: CryptoKeyPair
  der: Buffer
  pem: string
}

export interface Validity {
  notBefore?: Date
  notAfter?: Date
}

let serial = 1
const nextSerial = () => (serial++).toString(16).padStart(4, '0')

export function generateKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']) as Promise<CryptoKeyPair>
}

function wrap(name: string, keys: CryptoKeyPair, certificate: x509.X509Certificate): TestCertificate {
  return { name, keys, der: Buffer.from(certificate.rawData), pem: certificate.toString('pem') }
}

const caExtensions = () => [
  new x509.BasicConstraintsExtension(true, undefined, true),
  new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
]

export async function createRoot(name: string, validity: Validity = {}): Promise<TestCertificate> {
  const keys = await generateKeys()
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name,
    notBefore: validity.notBefore ?? new Date(TEST_NOW.getTime() - 365 * DAY),
    notAfter: validity.notAfter ?? new Date(TEST_NOW.getTime() + 365 * DAY),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: caExtensions(),
  })
  return wrap(name, keys, certificate)
}

export interface IssueOptions extends Validity {
  ca?: boolean
  /** Extra extensions as OID -> DER value. */
  extensions?: Record<string, Uint8Array>
  /** The key to certify; a fresh one by default. */
  keys?: CryptoKeyPair
}

export async function issue(
  issuer: TestCertificate,
  name: string,
  options: IssueOptions = {},
): Promise<TestCertificate> {
  const keys = options.keys ?? (await generateKeys())
  const extensions = Object.entries(options.extensions ?? {}).map(
    ([oid, value]) => new x509.Extension(oid, false, new Uint8Array(value)),
  )
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject: name,
    issuer: issuer.name,
    notBefore: options.notBefore ?? new Date(TEST_NOW.getTime() - 30 * DAY),
    notAfter: options.notAfter ?? new Date(TEST_NOW.getTime() + 30 * DAY),
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    extensions: [
      ...(options.ca ? caExtensions() : [new x509.BasicConstraintsExtension(false, undefined, true)]),
      ...extensions,
    ],
  })
  return wrap(name, keys, certificate)
}
