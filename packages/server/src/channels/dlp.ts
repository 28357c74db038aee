/**
 * Data-loss prevention for public channels, the one detector behind inbound masking, `POST /v1/dlp/scan` and the
 * refusal of an agent's reply, so that the three never disagree. It reads the normalized text (dlp-normalize.ts: any
 * Unicode digit, no zero-width characters) and finds card numbers (13 to 19 digits in an issuer's range, Luhn-valid,
 * in groups split by any run of spaces, dots, slashes or dashes), a CVV written next to a card or named as one, IBANs
 * (any case, any grouping, valid for their country's length and mod 97 per ISO 13616) and patterns a tenant adds
 * (account or national id formats, matched on the text as typed and as normalized). Findings carry kinds and
 * positions in the text as typed, never the values, so that they can be audited, and the mask covers exactly what was
 * typed.
 */
import { countrySpecs, isValidIBAN } from 'ibantools'
import { RE2 } from 're2-wasm'
import { type NormalizedText, normalizeForDlp, originalSpan } from './dlp-normalize.ts'

export type FindingKind = 'card-number' | 'cvv' | 'iban' | 'custom'

export interface Finding {
  kind: FindingKind
  /** For custom patterns, the tenant's name for it. */
  label?: string
  start: number
  end: number
}

export interface DlpResult {
  masked: string
  findings: Finding[]
}

export interface CustomPattern {
  label: string
  /** A regular expression source (RE2 syntax); matched globally and case-insensitively. */
  pattern: string
}

/** A tenant's pattern that RE2 cannot compile (backreferences and lookarounds are not in its syntax). */
export class InvalidPattern extends Error {}

/**
 * Tenant patterns run on every public message, so they run on RE2, whose matching time grows linearly with the text:
 * a pattern such as `(a+)+$` cannot stall the server (ReDoS) as it would with JavaScript's backtracking engine.
 */
const compiled = new Map<string, RE2>()
const COMPILED_KEPT = 500

export function compilePattern(pattern: string): RE2 {
  let regex = compiled.get(pattern)
  if (!regex) {
    try {
      regex = new RE2(pattern, 'giu')
    } catch (error) {
      throw new InvalidPattern((error as Error).message.replace(/^Invalid regular expression: /, ''))
    }
    if (compiled.size >= COMPILED_KEPT) compiled.delete(compiled.keys().next().value as string)
    compiled.set(pattern, regex)
  }
  return regex
}

/** Non-empty matches as UTF-16 offsets (RE2 counts code points, JavaScript strings count UTF-16 units). */
function* customMatches(text: string, regex: RE2): Generator<{ start: number; end: number }> {
  const astral = /[\uD800-\uDBFF]/.test(text)
  regex.lastIndex = 0
  for (let match = regex.exec(text); match; match = regex.exec(text)) {
    const found = match[0] ?? ''
    if (found.length === 0) {
      regex.lastIndex++
      continue
    }
    const start = astral ? utf16Offset(text, match.index) : match.index
    yield { start, end: start + found.length }
  }
}

function utf16Offset(text: string, codePoints: number): number {
  let offset = 0
  for (let i = 0; i < codePoints; i++) offset += (text.codePointAt(offset) ?? 0) > 0xffff ? 2 : 1
  return offset
}

/**
 * What may stand between two digit groups of one number: any run of white space (no-break, tabs, line breaks…), dots,
 * slashes and dashes of every kind (\p{Pd} spelled out, so that the scan needs no Unicode-mode regular expression,
 * which is several times slower; after NFKC, which already made fullwidth ones ASCII).
 */
const SEPARATOR = String.raw`[\s./\\\-\u058a\u05be\u1400\u1806\u2010-\u2015\u2e17\u2e1a\u2e3a\u2e3b\u2e40\u2e5d\u301c\u3030\u30a0\ufe31\ufe32\u2212\u2044\u2215]`
const DIGIT_GROUPS = new RegExp(String.raw`\d+(?:${SEPARATOR}+\d+)*`, 'g')
const DIGIT_GROUP = /\d+/g
const CVV_NAMED =
  /\b(?:cvv2?|cvc2?|cvn|csc|cid|security code|card code|card verification(?: code| value)?)\s*(?:is|:|=|-|#)?\s*(\d{3,4})\b/giu
/** A cheap test for CVV_NAMED's keywords, which most messages do not hold. */
const CVV_KEYWORD = /cv|cs|cid|code|verif/i
const CVV_AFTER_CARD =
  /^\s*[,;/]?\s*(?:exp(?:iry|ires)?\.?\s*:?\s*\d{1,2}\s*\/\s*\d{2,4}\s*[,;/]?)?\s*(?:cvv2?|cvc2?)?\s*:?\s*(\d{3,4})\b/iu
const IBAN_START = /([a-z]{2})(\d{2})/gi
const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u
const IBAN_CHAR = /[a-z0-9]/i
const IBAN_SEPARATOR = new RegExp(`^${SEPARATOR}$`)

/**
 * Issuer identification ranges (ISO/IEC 7812 prefixes of the schemes in use) and the lengths each issues: a number
 * outside them is an order, phone or tracking number, not a card.
 */
const ISSUER_RANGES: readonly (readonly [low: string, high: string, minLength: number, maxLength: number])[] = [
  ['4', '4', 13, 19], // Visa
  ['51', '55', 16, 16], // Mastercard
  ['2221', '2720', 16, 16], // Mastercard 2-series
  ['2200', '2204', 16, 19], // Mir
  ['34', '34', 15, 15], // American Express
  ['37', '37', 15, 15],
  ['300', '305', 14, 19], // Diners Club
  ['36', '36', 14, 19],
  ['38', '39', 16, 19],
  ['3528', '3589', 16, 19], // JCB
  ['50', '50', 13, 19], // Maestro, Verve
  ['56', '69', 13, 19], // Maestro, Discover, UnionPay, RuPay, Troy and the other 6-series
]

function inIssuerRange(digits: string): boolean {
  return ISSUER_RANGES.some(([low, high, min, max]) => {
    if (digits.length < min || digits.length > max) return false
    const prefix = digits.slice(0, low.length)
    return prefix >= low && prefix <= high
  })
}

/** The Luhn (mod 10) check of ISO/IEC 7812. */
export function luhnValid(digits: string): boolean {
  let sum = 0
  for (let i = 0; i < digits.length; i++) {
    let digit = digits.charCodeAt(digits.length - 1 - i) - 48
    if (i % 2 === 1) {
      digit *= 2
      if (digit > 9) digit -= 9
    }
    sum += digit
  }
  return sum % 10 === 0
}

/** ISO 13616: the country's length, its BBAN format and the mod 97 check (ibantools); any case, any grouping. */
export function ibanValid(iban: string): boolean {
  return isValidIBAN(iban.replace(/[^a-z0-9]/gi, '').toUpperCase())
}

export function isCardNumber(digits: string): boolean {
  return inIssuerRange(digits) && luhnValid(digits)
}

/** A card number's place in the normalized text and its digits. */
export interface CardSpan {
  start: number
  end: number
  digits: string
}

/**
 * Card numbers in a normalized text: within each run of digit groups, from each group on, the longest run of whole
 * groups that is a card number. "4111111111111111 123" is a card followed by a CVV, "12 4111 1111 1111 1111" a
 * quantity followed by a card.
 */
export function findCards(text: string): CardSpan[] {
  const cards: CardSpan[] = []
  for (const run of text.matchAll(DIGIT_GROUPS)) {
    if (run[0].length < 13) continue
    const groups = [...run[0].matchAll(DIGIT_GROUP)].map((g) => ({ start: run.index + g.index, digits: g[0] }))
    let from = 0
    while (from < groups.length) {
      let found: CardSpan | undefined
      let digits = ''
      for (let to = from; to < groups.length; to++) {
        const group = groups[to] as { start: number; digits: string }
        digits += group.digits
        if (digits.length > 19) break
        if (digits.length >= 13 && isCardNumber(digits)) {
          found = { start: (groups[from] as { start: number }).start, end: group.start + group.digits.length, digits }
        }
      }
      if (found) {
        cards.push(found)
        while (from < groups.length && (groups[from] as { start: number }).start < found.end) from++
      } else from++
    }
  }
  return cards
}

/** IBANs in a normalized text: a country code and check digits, then the country's length in letters and digits. */
function findIbans(text: string): { start: number; end: number; compact: string }[] {
  const ibans: { start: number; end: number; compact: string }[] = []
  for (const match of text.matchAll(IBAN_START)) {
    if (ibans.some((iban) => match.index < iban.end)) continue
    // It starts a word: "xde89…" is not an IBAN.
    if (match.index > 0 && LETTER_OR_DIGIT.test(text[match.index - 1] as string)) continue
    const length = countrySpecs[(match[1] as string).toUpperCase()]?.chars
    if (!length) continue
    let compact = ''
    let position = match.index
    let separators = 0
    while (position < text.length && compact.length < length) {
      const char = text[position] as string
      if (IBAN_CHAR.test(char)) {
        compact += char
        separators = 0
      } else if (IBAN_SEPARATOR.test(char) && compact.length > 0 && ++separators <= 3) {
        // a short run of separators between groups
      } else break
      position++
    }
    // The IBAN must end there: "DE89…00" followed by more letters or digits is some other code.
    if (compact.length !== length || IBAN_CHAR.test(text[position] ?? '')) continue
    const upper = compact.toUpperCase()
    if (isValidIBAN(upper)) ibans.push({ start: match.index, end: position, compact: upper })
  }
  return ibans
}

/** A finding and the mask that replaces it. */
export type Located = Finding & { replacement: string }

/**
 * Bidirectional overrides, embeddings and isolates: between them a phone shows characters in the other order, so
 * digits typed backwards inside a right-to-left override read as a card number on the screen.
 */
const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069]/

/**
 * Findings in the normalized text, positions in it. `reorders`: the text as typed holds bidirectional controls, so
 * its digits are also read backwards, as a screen may show them.
 */
function detect(text: string, reorders = false): Located[] {
  const findings: Located[] = []
  const overlaps = (start: number, end: number) => findings.some((f) => start < f.end && end > f.start)
  for (const iban of findIbans(text)) {
    findings.push({
      kind: 'iban',
      start: iban.start,
      end: iban.end,
      replacement: `[IBAN ${iban.compact.slice(0, 2)}•• •••• ${iban.compact.slice(-4)}]`,
    })
  }
  for (const card of findCards(text)) {
    if (overlaps(card.start, card.end)) continue
    findings.push({ kind: 'card-number', start: card.start, end: card.end, replacement: maskCard(card.digits) })
    const after = CVV_AFTER_CARD.exec(text.slice(card.end))
    if (after?.[1]) {
      const start = card.end + after[0].length - after[1].length
      findings.push({ kind: 'cvv', start, end: start + after[1].length, replacement: '[CVV]' })
    }
  }
  if (reorders) {
    // The text backwards, one UTF-16 unit at a time, so that a place in it is a place in the text mirrored.
    const backwards = text.split('').reverse().join('')
    for (const card of findCards(backwards)) {
      const start = text.length - card.end
      const end = text.length - card.start
      if (!overlaps(start, end)) findings.push({ kind: 'card-number', start, end, replacement: maskCard(card.digits) })
    }
  }
  for (const match of CVV_KEYWORD.test(text) ? text.matchAll(CVV_NAMED) : []) {
    const value = match[1] as string
    const start = match.index + match[0].length - value.length
    if (!overlaps(start, start + value.length)) {
      findings.push({ kind: 'cvv', start, end: start + value.length, replacement: '[CVV]' })
    }
  }
  return findings
}

export function maskCard(digits: string): string {
  return `[card •••• ${digits.slice(-4)}]`
}

/** Findings of the normalized text, moved to the text as typed. */
function toOriginal(normalized: NormalizedText, findings: Located[]): Located[] {
  return findings.map((finding) => ({ ...finding, ...originalSpan(normalized, finding.start, finding.end) }))
}

/** Replaces each finding (positions in `text`, not overlapping) with its mask. */
export function applyMasks(text: string, findings: readonly Located[]): DlpResult {
  const sorted = [...findings].sort((a, b) => a.start - b.start)
  let masked = ''
  let position = 0
  for (const finding of sorted) {
    masked += text.slice(position, finding.start) + finding.replacement
    position = finding.end
  }
  masked += text.slice(position)
  return { masked, findings: sorted.map(({ replacement: _, ...finding }) => finding) }
}

/** Scans a text and returns it masked, with what was found where (in the text as typed). */
export function scanText(text: string, custom: readonly CustomPattern[] = []): DlpResult {
  return applyMasks(text, locateFindings(text, custom))
}

/** What scanText masks, with the masks, before they are applied (positions in the text as typed). */
export function locateFindings(text: string, custom: readonly CustomPattern[] = []): Located[] {
  const normalized = normalizeForDlp(text)
  const findings = toOriginal(normalized, detect(normalized.text, BIDI_CONTROL.test(text)))
  const overlaps = (start: number, end: number) => findings.some((f) => start < f.end && end > f.start)
  for (const { label, pattern } of custom) {
    const regex = compilePattern(pattern)
    // On the normalized text only (as typed where nothing changed): one pass of RE2 a pattern.
    for (const span of customMatches(normalized.text, regex)) {
      const { start, end } = originalSpan(normalized, span.start, span.end)
      if (!overlaps(start, end)) findings.push({ kind: 'custom', label, start, end, replacement: `[${label}]` })
    }
  }
  return findings
}
