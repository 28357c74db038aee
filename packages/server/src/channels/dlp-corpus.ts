/**
 * The DLP corpus: spellings of card numbers and IBANs that customers (and agents) really type, which must be caught,
 * and numbers that only look like them, which must not. Shared by the corpus test, the end-to-end tests of the
 * inbound, scan and outbound paths, and the benchmark.
 */

/** Test card numbers of the schemes (published test PANs) and IBANs of the ISO 13616 registry's examples. */
export const CARDS = [
  '4111111111111111',
  '5500005555555559',
  '378282246310005',
  '6011111111111117',
  '3530111333300000',
  '2223003122003222',
  '4012888888881881',
  '5105105105105100',
  '36227206271667',
  '6759649826438453',
] as const

export const IBANS = [
  'DE89370400440532013000',
  'GB33BUKB20201555555555',
  'FR1420041010050500013M02606',
  'NL91ABNA0417164300',
  'ES9121000418450200051332',
  'IT60X0542811101000000123456',
  'BE68539007547034',
] as const

/** The usual grouping: 4-6-5 for 15 digits (American Express), 4-6-4 for 14 (Diners), fours otherwise. */
export function groupsOf(card: string): string[] {
  if (card.length === 15) return [card.slice(0, 4), card.slice(4, 10), card.slice(10)]
  if (card.length === 14) return [card.slice(0, 4), card.slice(4, 10), card.slice(10)]
  return card.match(/.{1,4}/g) as string[]
}

/** Writes ASCII digits in another script's digits (whose zero is at `zero`), leaving other characters. */
function inScript(text: string, zero: number): string {
  return text.replace(/\d/g, (d) => String.fromCodePoint(zero + Number(d)))
}

const joinWith = (separator: string) => (groups: string[]) => groups.join(separator)

/** How a number's groups are written: every spelling the issue named, and a few more of the same families. */
export const CARD_SPELLINGS: Record<string, (groups: string[]) => string> = {
  'no separators': joinWith(''),
  'single spaces': joinWith(' '),
  'single hyphens': joinWith('-'),
  dots: joinWith('.'),
  slashes: joinWith('/'),
  'mixed separators': (g) => g.map((group, i) => (i === 0 ? group : `${[' ', '-', '.', '/'][i % 4]}${group}`)).join(''),
  'double spaces': joinWith('  '),
  'line breaks': joinWith('\n'),
  tabs: joinWith('\t'),
  'no-break spaces': joinWith('\u00a0'),
  'en dashes': joinWith('\u2013'),
  'em dashes': joinWith('\u2014'),
  'zero-width spaces': (g) => g.map((group) => group.split('').join('\u200b')).join('\u200b'),
  'narrow no-break spaces': joinWith('\u202f'),
  fullwidth: (g) => inScript(g.join(' '), 0xff10),
  'Arabic-Indic': (g) => inScript(g.join(' '), 0x0660),
  'Extended Arabic-Indic': (g) => inScript(g.join(' '), 0x06f0),
  Devanagari: (g) => inScript(g.join(' '), 0x0966),
  'mathematical bold': (g) => inScript(g.join(' '), 0x1d7ce),
  'dot and zero-width joiner': (g) => g.join('.\u200d'),
  // WhatsApp's and the phones' emoji keyboards: each digit a keycap (digit, emoji presentation selector, enclosing
  // keycap), or a digit with a variation selector or an accent stacked on it; all read as the digit.
  keycaps: (g) => g.map((group) => group.replace(/\d/g, (d) => `${d}\ufe0f\u20e3`)).join(' '),
  'variation selectors': (g) => g.map((group) => group.replace(/\d/g, (d) => `${d}\ufe0e`)).join(' '),
  'combining accents': (g) => g.map((group) => group.replace(/\d/g, (d) => `${d}\u0301`)).join(' '),
  // Typed backwards between a right-to-left override and its pop: the screen shows it the right way round.
  'backwards in a right-to-left override': (g) => `\u202e${g.join(' ').split('').reverse().join('')}\u202c`,
}

export const IBAN_SPELLINGS: Record<string, (iban: string) => string> = {
  'upper case grouped': (iban) => (iban.match(/.{1,4}/g) as string[]).join(' '),
  'upper case compact': (iban) => iban,
  'lower case grouped': (iban) => (iban.toLowerCase().match(/.{1,4}/g) as string[]).join(' '),
  'lower case compact': (iban) => iban.toLowerCase(),
  dashes: (iban) => (iban.match(/.{1,4}/g) as string[]).join('-'),
  'mixed case with dots': (iban) =>
    (`${iban.slice(0, 2).toLowerCase()}${iban.slice(2)}`.match(/.{1,4}/g) as string[]).join('.'),
  'no-break spaces': (iban) => (iban.match(/.{1,4}/g) as string[]).join('\u00a0'),
  fullwidth: (iban) =>
    (iban.match(/.{1,4}/g) as string[])
      .join(' ')
      .replace(/[0-9A-Z]/g, (c) => String.fromCodePoint((c.codePointAt(0) as number) + 0xfee0)),
  'Arabic-Indic digits': (iban) => inScript((iban.match(/.{1,4}/g) as string[]).join(' '), 0x0660),
}

export interface CorpusEntry {
  spelling: string
  text: string
  /** The digits (or IBAN characters) that must not survive the masking. */
  secret: string
  kind: 'card-number' | 'iban' | 'cvv'
}

/** Every card in every spelling and every IBAN in every spelling, each inside a sentence. */
export function mustCatch(): CorpusEntry[] {
  const entries: CorpusEntry[] = []
  for (const card of CARDS) {
    for (const [spelling, spell] of Object.entries(CARD_SPELLINGS)) {
      entries.push({
        spelling,
        text: `hi, my card is ${spell(groupsOf(card))} thanks`,
        secret: card,
        kind: 'card-number',
      })
    }
  }
  for (const iban of IBANS) {
    for (const [spelling, spell] of Object.entries(IBAN_SPELLINGS)) {
      entries.push({ spelling, text: `please pay ${spell(iban)} today`, secret: iban, kind: 'iban' })
    }
  }
  for (const [spelling, text] of [
    ['CVV named', 'the cvv is 737'],
    ['CVV named with colon', 'CVC: 0421'],
    ['security code', 'security code 123'],
    ['CVV in Arabic-Indic', 'cvv ٧٣٧'],
    ['CVV in fullwidth', 'CVV ７３７'],
  ] as const) {
    entries.push({ spelling, text, secret: '', kind: 'cvv' })
  }
  return entries
}

/** A small deterministic generator (mulberry32), so that the corpus is the same on every run. */
function random(seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Numbers that only look like cards or IBANs: orders, phones, dates, amounts, tracking codes, failed checksums. */
export function mustNotCatch(): { category: string; text: string }[] {
  const next = random(13616)
  const digits = (n: number) => Array.from({ length: n }, () => Math.floor(next() * 10)).join('')
  const entries: { category: string; text: string }[] = [
    { category: 'order number', text: 'order 1234567890123456 shipped' },
    { category: 'order number', text: 'Your order ORD-2026-11-004512 is on its way' },
    { category: 'phone number', text: 'call me on +44 7700 900123' },
    { category: 'phone number', text: 'my number is +1 (555) 123-4567, or +1 (555) 987-6543' },
    { category: 'phone number', text: 'ring 0800 123 4567 / 0800 765 4321' },
    { category: 'date', text: 'the meeting is on 2026-11-24 at 14:30' },
    { category: 'date', text: 'away 24.11.2026 - 01.12.2026' },
    { category: 'date', text: 'from 2024-01-15 to 2024-02-15, 2024-03-15 2024-04-15' },
    { category: 'amount', text: 'amount 1250.00 EUR on 24/11/2026' },
    { category: 'amount', text: 'I was charged €1.250.000,00 and then 4 111,11' },
    { category: 'tracking code', text: 'UPS 1Z999AA10123456784' },
    { category: 'tracking code', text: 'tracking 9400111899223100012345' },
    { category: 'tracking code', text: 'DHL JD014600006281234567' },
    { category: 'tracking code', text: 'Royal Mail RR123456785GB' },
    { category: 'failed checksum', text: '4111 1111 1111 1112' },
    { category: 'failed checksum', text: 'IBAN DE89 3704 0044 0532 0130 01' },
    { category: 'failed checksum', text: 'gb33bukb20201555555556' },
    { category: 'too short', text: '4111 1111 1111' },
    { category: 'CVV without a card', text: 'I have 3 kids and 737 reasons' },
    { category: 'reference', text: 'case 0123-4567-8901-2345' },
  ]
  for (let i = 0; i < 20; i++) {
    entries.push({ category: 'order number', text: `Order #${digits(8 + (i % 5))} confirmed` })
    entries.push({
      category: 'phone number',
      text: `+44 7${digits(3)} ${digits(6)} or 0${digits(4)} ${digits(6)}`,
    })
    const day = 1 + Math.floor(next() * 28)
    const month = 1 + Math.floor(next() * 12)
    entries.push({ category: 'date', text: `due ${day}/${month}/2026, paid ${month}.${day}.2025 at 10:${digits(2)}` })
    entries.push({
      category: 'amount',
      text: `balance ${digits(1)},${digits(3)},${digits(3)}.${digits(2)} and ${digits(3)} ${digits(3)},${digits(2)} EUR`,
    })
    entries.push({ category: 'tracking code', text: `parcel 1Z${digits(3)}AA${digits(10)}, ref 9${digits(21)}` })
  }
  return entries
}
