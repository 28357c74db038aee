import { findCards, maskCard } from './dlp.ts'
import { normalizeForDlp, originalSpan } from './dlp-normalize.ts'

/**
 * A card number typed over several messages ("4111 1111" then "1111 1111"): each message alone holds too few digits
 * to be a card, so DLP reads the customer's last messages of the conversation (as stored) and this one as one text,
 * joined by a line break, and looks for a card that ends in this message and starts in an earlier one.
 */
export interface SplitCard {
  /** Where the card lies in each text (earlier ones in the order given, then this one), as typed or stored. */
  parts: { text: number; start: number; end: number; replacement: string }[]
}

const LEADING_DIGIT = /^[\s./\\\-\u2010-\u2015\u2212]*\d/
const TRAILING_DIGIT = /\d[\s./\\\-\u2010-\u2015\u2212]*$/

/** The card split over `earlier` (oldest first, as stored) and `text`, if there is one. */
export function findSplitCard(earlier: readonly string[], text: string): SplitCard | undefined {
  const last = earlier.at(-1)
  if (last === undefined) return undefined
  const pieces = [...earlier, text].map(normalizeForDlp)
  // Only a message that starts with digits can continue one that ends with digits.
  if (!LEADING_DIGIT.test(pieces.at(-1)?.text ?? '') || !TRAILING_DIGIT.test(pieces.at(-2)?.text ?? ''))
    return undefined
  const offsets: number[] = []
  let joined = ''
  for (const piece of pieces) {
    if (joined.length > 0) joined += '\n'
    offsets.push(joined.length)
    joined += piece.text
  }
  const current = offsets.at(-1) as number
  const card = findCards(joined).find((c) => c.start < current && c.end > current)
  if (!card) return undefined
  const parts: SplitCard['parts'] = []
  pieces.forEach((piece, index) => {
    const from = offsets[index] as number
    const to = from + piece.text.length
    const start = Math.max(card.start, from)
    const end = Math.min(card.end, to)
    if (start >= end) return
    const span = originalSpan(piece, start - from, end - from)
    // The first part shows the last four digits (all an agent needs); the others say what they were.
    parts.push({ text: index, ...span, replacement: parts.length === 0 ? maskCard(card.digits) : '[card, continued]' })
  })
  return { parts }
}
