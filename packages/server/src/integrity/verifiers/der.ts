import { AttestationError } from './verifier.ts'

/**
 * A small DER reader for the few attestation structures we read. It is ours rather than a schema library's because
 * Android's AuthorizationList grows new tags with every KeyMint version, and schema parsers refuse tags they do not
 * know; here unknown tags are simply skipped. Every malformation is `bad-format`.
 */

export type DerTagClass = 'universal' | 'application' | 'context' | 'private'

export interface DerElement {
  tagClass: DerTagClass
  constructed: boolean
  tag: number
  contents: Buffer
}

const TAG_CLASSES: readonly DerTagClass[] = ['universal', 'application', 'context', 'private']

export const DER_BOOLEAN = 1
export const DER_INTEGER = 2
export const DER_OCTET_STRING = 4
export const DER_OBJECT_IDENTIFIER = 6
export const DER_ENUMERATED = 10
export const DER_SEQUENCE = 16
export const DER_SET = 17

function malformed(): never {
  throw new AttestationError('bad-format')
}

function byteAt(bytes: Buffer, offset: number): number {
  const byte = bytes[offset]
  return byte === undefined ? malformed() : byte
}

/** Reads the element at `offset`; returns it and the offset just past it. */
function readElement(bytes: Buffer, offset: number): { element: DerElement; next: number } {
  const first = byteAt(bytes, offset)
  let position = offset + 1
  let tag = first & 0x1f
  if (tag === 0x1f) {
    tag = 0
    let byte: number
    do {
      byte = byteAt(bytes, position++)
      tag = tag * 128 + (byte & 0x7f)
      if (tag > 0xffffff) malformed()
    } while (byte & 0x80)
  }
  const lengthByte = byteAt(bytes, position++)
  let length = lengthByte
  if (lengthByte & 0x80) {
    const lengthOctets = lengthByte & 0x7f
    // 0 is BER's indefinite length; more than 4 octets is no length an attestation needs.
    if (lengthOctets === 0 || lengthOctets > 4) malformed()
    length = 0
    for (let i = 0; i < lengthOctets; i++) length = length * 256 + byteAt(bytes, position++)
  }
  const end = position + length
  if (end > bytes.length) malformed()
  const element: DerElement = {
    tagClass: TAG_CLASSES[first >> 6] ?? malformed(),
    constructed: (first & 0x20) !== 0,
    tag,
    contents: bytes.subarray(position, end),
  }
  return { element, next: end }
}

/** Reads exactly one element that spans all of `bytes`. */
export function readDer(bytes: Buffer): DerElement {
  const { element, next } = readElement(bytes, 0)
  if (next !== bytes.length) malformed()
  return element
}

/** The elements inside a constructed element, in order. */
export function derChildren(element: DerElement): DerElement[] {
  if (!element.constructed) malformed()
  const children: DerElement[] = []
  let offset = 0
  while (offset < element.contents.length) {
    const { element: child, next } = readElement(element.contents, offset)
    children.push(child)
    offset = next
  }
  return children
}

/** Checks the element is the universal type expected (or a context tag, with `tagClass`) and returns it. */
export function expectDer(
  element: DerElement | undefined,
  tag: number,
  tagClass: DerTagClass = 'universal',
): DerElement {
  if (element === undefined || element.tag !== tag || element.tagClass !== tagClass) return malformed()
  return element
}

/** A non-negative INTEGER or ENUMERATED small enough for a JavaScript number. */
export function derSmallInteger(element: DerElement | undefined, tag = DER_INTEGER): number {
  const { contents } = expectDer(element, tag)
  if (contents.length === 0 || contents.length > 6 || byteAt(contents, 0) & 0x80) malformed()
  return contents.reduce((value, byte) => value * 256 + byte, 0)
}

export function derBoolean(element: DerElement | undefined): boolean {
  const { contents } = expectDer(element, DER_BOOLEAN)
  if (contents.length !== 1) malformed()
  return byteAt(contents, 0) !== 0
}

export function derOctetString(element: DerElement | undefined): Buffer {
  return expectDer(element, DER_OCTET_STRING).contents
}

/** The dotted form of an OBJECT IDENTIFIER. */
export function derObjectIdentifier(element: DerElement | undefined): string {
  const { contents } = expectDer(element, DER_OBJECT_IDENTIFIER)
  const arcs: number[] = []
  let arc = 0
  for (const byte of contents) {
    arc = arc * 128 + (byte & 0x7f)
    if (arc > Number.MAX_SAFE_INTEGER / 128) malformed()
    if (!(byte & 0x80)) {
      arcs.push(arc)
      arc = 0
    }
  }
  const first = arcs.shift()
  if (first === undefined || contents.length === 0 || byteAt(contents, contents.length - 1) & 0x80) malformed()
  const root = first < 80 ? Math.floor(first / 40) : 2
  return [root, first - root * 40, ...arcs].join('.')
}
