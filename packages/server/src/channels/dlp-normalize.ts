/**
 * The text DLP reads: what a customer typed, with every spelling of a digit made the same. Unicode NFKC (fullwidth and
 * mathematical digits become ASCII, a no-break space a space), every other decimal digit (`\p{Nd}`: Arabic-Indic,
 * Devanagari…) replaced by its ASCII value, format characters (`\p{Cf}`: zero-width spaces and joiners, soft
 * hyphens, direction marks) removed, and so are marks on a digit (`\p{M}`: an emoji keycap's selector and enclosing
 * keycap, a variation selector, an accent stacked on it), which still show the digit. Each unit of the normalized text remembers where it came from, so that a finding
 * masks exactly what the customer typed, whatever the spelling.
 */
export interface NormalizedText {
  /** The normalized text. */
  text: string
  /**
   * Where the normalized text came from, in the order of the text: each segment maps `length` units of the normalized
   * text at `at` to `sourceLength` units of the original at `source` (one non-ASCII character, or a run of ASCII that
   * maps one to one). Null when nothing changed.
   */
  segments: Segment[] | null
}

interface Segment {
  /** A run of ASCII copied as it was, or one character and its reading. */
  copied: boolean
  at: number
  length: number
  source: number
  sourceLength: number
}

const NON_ASCII = /[\u0080-\uffff]/
const FORMAT = /^\p{Cf}$/u
const DECIMAL_DIGIT = /^\p{Nd}$/u
const MARK = /^\p{M}$/u

/**
 * Unicode encodes decimal digits in runs of ten, zero to nine (a stability guarantee), some runs back to back: the
 * value is the distance from the start of the run, modulo ten. Remembered per code point (a few hundred exist).
 */
const digitValues = new Map<number, string>()
function digitValue(codePoint: number): string {
  let value = digitValues.get(codePoint)
  if (value === undefined) {
    let start = codePoint
    while (DECIMAL_DIGIT.test(String.fromCodePoint(start - 1))) start--
    value = String((codePoint - start) % 10)
    digitValues.set(codePoint, value)
  }
  return value
}

/** One non-ASCII character as DLP reads it (remembered: a conversation uses few distinct characters). */
const readings = new Map<string, string>()
const READINGS_KEPT = 4096
function readingOf(char: string): string {
  let reading = readings.get(char)
  if (reading === undefined) {
    if (FORMAT.test(char)) reading = ''
    else {
      reading = ''
      for (const part of char.normalize('NFKC')) {
        const codePoint = part.codePointAt(0) as number
        reading += codePoint > 0x7f && DECIMAL_DIGIT.test(part) ? digitValue(codePoint) : part
      }
    }
    if (readings.size >= READINGS_KEPT) readings.clear()
    readings.set(char, reading)
  }
  return reading
}

const NEXT_NON_ASCII = /[\u0080-\uffff]/g

function endsWithDigit(text: string): boolean {
  const last = text.charCodeAt(text.length - 1)
  return last >= 0x30 && last <= 0x39
}

export function normalizeForDlp(text: string): NormalizedText {
  if (!NON_ASCII.test(text)) return { text, segments: null }
  let normalized = ''
  const segments: Segment[] = []
  let position = 0
  NEXT_NON_ASCII.lastIndex = 0
  for (let match = NEXT_NON_ASCII.exec(text); match; match = NEXT_NON_ASCII.exec(text)) {
    const index = match.index
    if (index > position) {
      segments.push({
        copied: true,
        at: normalized.length,
        length: index - position,
        source: position,
        sourceLength: index - position,
      })
      normalized += text.slice(position, index)
    }
    const codePoint = text.codePointAt(index) as number
    const char = codePoint > 0xffff ? text.slice(index, index + 2) : (match[0] as string)
    // A mark belongs to the character before it; on a digit it leaves the digit as it was.
    const reading = MARK.test(char) && endsWithDigit(normalized) ? '' : readingOf(char)
    segments.push({
      copied: false,
      at: normalized.length,
      length: reading.length,
      source: index,
      sourceLength: char.length,
    })
    normalized += reading
    position = index + char.length
    NEXT_NON_ASCII.lastIndex = position
  }
  if (position < text.length) {
    const rest = text.length - position
    segments.push({ copied: true, at: normalized.length, length: rest, source: position, sourceLength: rest })
    normalized += text.slice(position)
  }
  return { text: normalized, segments }
}

/** The segment holding unit `offset` of the normalized text (binary search; segments are in order). */
function segmentAt(segments: Segment[], offset: number): Segment {
  let low = 0
  let high = segments.length - 1
  while (low < high) {
    const middle = (low + high + 1) >> 1
    if ((segments[middle] as Segment).at <= offset) low = middle
    else high = middle - 1
  }
  return segments[low] as Segment
}

/** The original text's span of the normalized span [start, end) (end > start). */
export function originalSpan(normalized: NormalizedText, start: number, end: number): { start: number; end: number } {
  if (!normalized.segments) return { start, end }
  const first = segmentAt(normalized.segments, start)
  const last = segmentAt(normalized.segments, end - 1)
  // In a copied run the offset carries over; a character's reading maps to the whole character.
  return {
    start: first.copied ? first.source + (start - first.at) : first.source,
    end: last.copied ? last.source + (end - last.at) : last.source + last.sourceLength,
  }
}
