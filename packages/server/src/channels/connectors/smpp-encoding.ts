/// <reference path="./smpp-module.d.ts" />
import smpp from 'smpp'

/**
 * SMS text as an SMSC takes it: the GSM 03.38 default alphabet (data_coding 0, one septet per octet, which the SMSC
 * packs) when every character has a place in it, else UCS-2 (data_coding 8, UTF-16BE). A text longer than one SMS is
 * split into parts that each carry a concatenation user data header (3GPP TS 23.040 §9.2.3.24.1), so that the phone
 * shows one message.
 */
export const DATA_CODING_GSM = 0x00
export const DATA_CODING_UCS2 = 0x08
/** esm_class bit 6: short_message starts with a user data header. */
export const ESM_CLASS_UDHI = 0x40

/** Septets (GSM) or octets (UCS-2) in one SMS, alone or as a part of a concatenated one (6 octets go to the UDH). */
const SINGLE_GSM = 160
const PART_GSM = 153
const SINGLE_UCS2 = 140
const PART_UCS2 = 134
/** The concatenation header numbers parts in one octet. */
const MAX_PARTS = 255
const ESCAPE = 0x1b

export interface EncodedSms {
  dataCoding: typeof DATA_CODING_GSM | typeof DATA_CODING_UCS2
  /** Each part's short_message: the UDH (when there are several) followed by the encoded text. */
  parts: Buffer[]
}

export class MessageTooLongError extends Error {
  readonly code = 'smpp/message-too-long'
  constructor() {
    super(`the message needs more than ${MAX_PARTS} SMS parts`)
    this.name = 'MessageTooLongError'
  }
}

function isGsmText(text: string): boolean {
  return smpp.gsmCoder.GSM.charRegex.test(text)
}

/** `reference` (0–255) tells the phone which parts belong together; it should differ between messages in flight. */
export function encodeSms(text: string, reference: number): EncodedSms {
  if (isGsmText(text)) {
    const septets = smpp.gsmCoder.encode(text, 0)
    // An escape septet and the character after it are one character: a part never ends between them.
    return { dataCoding: DATA_CODING_GSM, parts: split(septets, SINGLE_GSM, PART_GSM, 1, reference, endsInEscape) }
  }
  const octets = Buffer.from(text, 'utf16le').swap16()
  // A surrogate pair is one character: a part never ends between its halves.
  return {
    dataCoding: DATA_CODING_UCS2,
    parts: split(octets, SINGLE_UCS2, PART_UCS2, 2, reference, endsInHighSurrogate),
  }
}

function split(
  encoded: Buffer,
  single: number,
  perPart: number,
  unit: number,
  reference: number,
  cutsCharacter: (chunk: Buffer) => boolean,
): Buffer[] {
  if (encoded.length <= single) return [encoded]
  const chunks: Buffer[] = []
  for (let offset = 0; offset < encoded.length; ) {
    let chunk = encoded.subarray(offset, offset + perPart)
    if (offset + chunk.length < encoded.length && cutsCharacter(chunk)) chunk = chunk.subarray(0, chunk.length - unit)
    chunks.push(chunk)
    offset += chunk.length
  }
  if (chunks.length > MAX_PARTS) throw new MessageTooLongError()
  return chunks.map((chunk, index) =>
    Buffer.concat([Buffer.from([0x05, 0x00, 0x03, reference & 0xff, chunks.length, index + 1]), chunk]),
  )
}

const endsInEscape = (chunk: Buffer) => chunk.at(-1) === ESCAPE
const endsInHighSurrogate = (chunk: Buffer) => {
  const high = chunk.at(-2) ?? 0
  return high >= 0xd8 && high <= 0xdb
}

/** Where an inbound part belongs: 8-bit (IEI 0) or 16-bit (IEI 8) reference, the part count and this part's number. */
export interface Concatenation {
  reference: number
  total: number
  index: number
}

/** The concatenation element among a part's information elements (as the smpp package splits the UDH), if any. */
export function concatenationOf(elements: readonly Buffer[] | undefined): Concatenation | undefined {
  for (const element of elements ?? []) {
    const [iei, length] = element
    if (iei === 0x00 && length === 3 && element.length >= 5) {
      return valid({ reference: element[2] as number, total: element[3] as number, index: element[4] as number })
    }
    if (iei === 0x08 && length === 4 && element.length >= 6) {
      return valid({ reference: element.readUInt16BE(2), total: element[4] as number, index: element[5] as number })
    }
  }
  return undefined
}

function valid(concatenation: Concatenation): Concatenation | undefined {
  const { total, index } = concatenation
  return total >= 1 && index >= 1 && index <= total ? concatenation : undefined
}
