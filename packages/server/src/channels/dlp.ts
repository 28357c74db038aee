/**
 * Data-loss prevention for public channels: finds card numbers (Luhn-valid PANs of 13 to 19 digits in their usual
 * spacings), a CVV written next to a card or named as one, checksum-valid IBANs, and patterns a tenant adds (account
 * or national id formats), and masks them before the text is stored or shown. Findings carry kinds and positions,
 * never the values, so that they can be audited.
 */
import { RE2 } from 're2-wasm'

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

/** Digits in groups separated by single spaces or dashes, 13 to 19 digits in all, not inside a longer number. */
const CARD_CANDIDATE = /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])/g
const CVV_NAMED = /\b(?:cvv2?|cvc2?|cid|security code|card code)\b\s*(?:is|:|=)?\s*(\d{3,4})\b/gi
const CVV_AFTER_CARD = /^\s*[,;/]?\s*(?:exp(?:iry|ires)?\s*\d{1,2}\s*\/\s*\d{2,4}\s*[,;/]?)?\s*(\d{3,4})\b/i
const IBAN_CANDIDATE = /\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b/g

/** The Luhn (mod 10) check of ISO/IEC 7812. */
export function luhnValid(digits: string): boolean {
  let sum = 0
  for (let i = 0; i < digits.length; i++) {
    let digit = Number(digits[digits.length - 1 - i])
    if (i % 2 === 1) {
      digit *= 2
      if (digit > 9) digit -= 9
    }
    sum += digit
  }
  return sum % 10 === 0
}

/** The ISO 13616 check: the country code and check digits moved to the end, read as a number, mod 97 is 1. */
export function ibanValid(iban: string): boolean {
  const compact = iban.replace(/ /g, '').toUpperCase()
  if (compact.length < 15 || compact.length > 34) return false
  const rearranged = compact.slice(4) + compact.slice(0, 4)
  let remainder = 0
  for (const char of rearranged) {
    const value = /[A-Z]/.test(char) ? String(char.charCodeAt(0) - 55) : char
    for (const digit of value) remainder = (remainder * 10 + Number(digit)) % 97
  }
  return remainder === 1
}

function isCardNumber(candidate: string): boolean {
  const digits = candidate.replace(/[ -]/g, '')
  if (digits.length < 13 || digits.length > 19) return false
  // Separators must be consistent (all spaces or all dashes): "2026-11-24 1234" is not a card.
  const separators = new Set(candidate.replace(/\d/g, ''))
  if (separators.size > 1) return false
  // Issuer ranges of the major schemes begin 2–6; a number starting 0, 1, 7, 8 or 9 is an id, not a card.
  if (!/^[2-6]/.test(digits)) return false
  return luhnValid(digits)
}

/**
 * The longest card number at the start of a run of digit groups: "4111111111111111 123" is a card followed by a
 * CVV, not a 19-digit number.
 */
function leadingCardNumber(run: string): string | undefined {
  const groups = run.split(/(?<=\d)(?=[ -])/)
  for (let count = groups.length; count > 0; count--) {
    const candidate = groups.slice(0, count).join('')
    if (isCardNumber(candidate)) return candidate
  }
  return undefined
}

function maskCard(candidate: string): string {
  return `[card •••• ${candidate.replace(/[ -]/g, '').slice(-4)}]`
}

function maskIban(candidate: string): string {
  const compact = candidate.replace(/ /g, '')
  return `[IBAN ${compact.slice(0, 2)}•• •••• ${compact.slice(-4)}]`
}

/** Scans a text and returns it masked, with what was found where (in the original text). */
export function scanText(text: string, custom: readonly CustomPattern[] = []): DlpResult {
  const findings: (Finding & { replacement: string })[] = []
  const overlaps = (start: number, end: number) => findings.some((f) => start < f.end && end > f.start)

  for (const match of text.matchAll(CARD_CANDIDATE)) {
    const card = leadingCardNumber(match[0])
    if (!card) continue
    const start = match.index
    const end = start + card.length
    findings.push({ kind: 'card-number', start, end, replacement: maskCard(card) })
    const after = CVV_AFTER_CARD.exec(text.slice(end))
    if (after?.[1]) {
      const cvvStart = end + after[0].length - after[1].length
      findings.push({ kind: 'cvv', start: cvvStart, end: cvvStart + after[1].length, replacement: '[CVV]' })
    }
  }
  for (const match of text.matchAll(CVV_NAMED)) {
    const value = match[1] as string
    const start = match.index + match[0].length - value.length
    if (!overlaps(start, start + value.length)) {
      findings.push({ kind: 'cvv', start, end: start + value.length, replacement: '[CVV]' })
    }
  }
  for (const match of text.matchAll(IBAN_CANDIDATE)) {
    const start = match.index
    const end = start + match[0].length
    if (ibanValid(match[0]) && !overlaps(start, end)) {
      findings.push({ kind: 'iban', start, end, replacement: maskIban(match[0]) })
    }
  }
  for (const { label, pattern } of custom) {
    for (const { start, end } of customMatches(text, compilePattern(pattern))) {
      if (!overlaps(start, end)) findings.push({ kind: 'custom', label, start, end, replacement: `[${label}]` })
    }
  }

  findings.sort((a, b) => a.start - b.start)
  let masked = ''
  let position = 0
  for (const finding of findings) {
    masked += text.slice(position, finding.start) + finding.replacement
    position = finding.end
  }
  masked += text.slice(position)
  return { masked, findings: findings.map(({ replacement: _, ...finding }) => finding) }
}
