/**
 * The cost of DLP per public message: microseconds to scan (normalize, find cards, CVVs and IBANs, mask) a
 * 160-character SMS, plain ASCII and with non-ASCII spellings, with and without a card in it and with the bank's own
 * patterns, printed as median and 99th percentile over many runs after a warm-up.
 *
 *   npm run bench:dlp
 *   npm run bench:dlp -- --runs 200000
 */
import { parseArgs } from 'node:util'
import { scanText } from '../src/channels/dlp.ts'

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '100000' } } })
const runs = Number(args.runs)

/** Pads a text to exactly 160 characters (one SMS) with ordinary words. */
const sms = (text: string) => `${text} ${'thanks for your help with my account today '.repeat(5)}`.slice(0, 160)

const cases: [string, string][] = [
  [
    'ASCII, nothing to find',
    sms('Hello, I would like to know why my payment of 125.50 EUR on 24/11/2026 was declined'),
  ],
  ['ASCII, a card with spaces', sms('my card is 4111 1111 1111 1111 exp 12/28 cvv 737, please block it')],
  ['ASCII, card with dots, lower-case IBAN', sms('card 4111.1111.1111.1111 and iban de89 3704 0044 0532 0130 00 ok')],
  ['no-break spaces and zero-width', sms('card 4111\u00a01111\u200b1111\u00a01111 please')],
  ['fullwidth digits', sms('ｍｙ card ４１１１ １１１１ １１１１ １１１１ please')],
  ['Arabic-Indic digits', sms('رقم البطاقة ٤١١١ ١١١١ ١١١١ ١١١١ شكرا')],
]
const bankPatterns = [
  { label: 'customer number', pattern: 'CN-\\d{8}' },
  { label: 'national insurance number', pattern: '\\b[A-CEGHJ-PR-TW-Z]{2}\\d{6}[A-D]\\b' },
]

function measure(text: string, patterns: typeof bankPatterns): { median: number; p99: number } {
  for (let i = 0; i < 5000; i++) scanText(text, patterns)
  const samples = new Float64Array(runs)
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint()
    scanText(text, patterns)
    samples[i] = Number(process.hrtime.bigint() - start) / 1000
  }
  samples.sort()
  return { median: samples[Math.floor(runs / 2)] as number, p99: samples[Math.floor(runs * 0.99)] as number }
}

console.log(`DLP scan of a 160-character SMS, ${runs} runs each (µs)`)
console.log('case'.padEnd(42), 'median'.padStart(8), 'p99'.padStart(8), '  +2 bank patterns median, p99')
for (const [name, text] of cases) {
  const plain = measure(text, [])
  const withPatterns = measure(text, bankPatterns)
  console.log(
    name.padEnd(42),
    plain.median.toFixed(2).padStart(8),
    plain.p99.toFixed(2).padStart(8),
    `  ${withPatterns.median.toFixed(2)}, ${withPatterns.p99.toFixed(2)}`,
  )
}
