import {
  DER_BOOLEAN,
  DER_SEQUENCE,
  derChildren,
  derObjectIdentifier,
  derOctetString,
  expectDer,
  readDer,
} from './der.ts'
import { AttestationError } from './verifier.ts'

const EXTENSIONS_TAG = 3

/**
 * The extensions of a DER certificate, by OID, each the contents of its extnValue. Node's X509Certificate does not
 * expose custom extensions, so the TBSCertificate is walked here; an OID appearing twice is `bad-format` (RFC 5280).
 */
export function certificateExtensions(certificateDer: Buffer): Map<string, Buffer> {
  const [tbsCertificate] = derChildren(expectDer(readDer(certificateDer), DER_SEQUENCE))
  const wrapper = derChildren(expectDer(tbsCertificate, DER_SEQUENCE)).find(
    (field) => field.tagClass === 'context' && field.tag === EXTENSIONS_TAG,
  )
  const extensions = new Map<string, Buffer>()
  if (wrapper === undefined) return extensions
  const [list, ...rest] = derChildren(wrapper)
  if (rest.length > 0) throw new AttestationError('bad-format')
  for (const extension of derChildren(expectDer(list, DER_SEQUENCE))) {
    const fields = derChildren(expectDer(extension, DER_SEQUENCE))
    const oid = derObjectIdentifier(fields[0])
    const value = derOctetString(fields[1]?.tag === DER_BOOLEAN ? fields[2] : fields[1])
    if (extensions.has(oid)) throw new AttestationError('bad-format')
    extensions.set(oid, value)
  }
  return extensions
}
