import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createTestBank, startTestServer } from '../testing/harness.ts'
import { compilePattern, InvalidPattern, ibanValid, luhnValid, scanText } from './dlp.ts'
import { mustCatch, mustNotCatch } from './dlp-corpus.ts'
import { normalizeForDlp } from './dlp-normalize.ts'

describe('data-loss prevention on public-channel text', () => {
  test('card numbers in their usual spacings are found and masked to the last four digits', () => {
    const cards: [string, string][] = [
      ['my card is 4111 1111 1111 1111 thanks', 'my card is [card •••• 1111] thanks'],
      ['4111-1111-1111-1111', '[card •••• 1111]'],
      ['5500005555555559', '[card •••• 5559]'],
      ['amex 3782 822463 10005 ok', 'amex [card •••• 0005] ok'],
      ['6011 1111 1111 1117.', '[card •••• 1117].'],
      ['Maestro 6759649826438453', 'Maestro [card •••• 8453]'],
      ['2223 0031 2200 3222', '[card •••• 3222]'],
    ]
    for (const [text, masked] of cards) {
      const result = scanText(text)
      assert.equal(result.masked, masked, text)
      assert.deepEqual(
        result.findings.map((f) => f.kind),
        ['card-number'],
        text,
      )
    }
  })

  test('a card typed backwards inside a right-to-left override, which a phone shows the right way round, is masked', () => {
    const card = '4539 1488 0343 6467'
    const backwards = card.split('').reverse().join('')
    assert.equal(luhnValid(backwards.replace(/ /g, '')), false, 'backwards it is no card number by itself')
    for (const [open, close] of [
      ['\u202e', '\u202c'], // right-to-left override … pop directional formatting
      ['\u2067\u202e', '\u202c\u2069'], // inside a right-to-left isolate
    ]) {
      const result = scanText(`my card ${open}${backwards}${close} thanks`)
      assert.equal(result.masked, `my card ${open}[card •••• 6467]${close} thanks`)
      assert.deepEqual(
        result.findings.map((f) => f.kind),
        ['card-number'],
      )
    }
    // Without a control, the same digits backwards are no card: left as they are.
    assert.equal(scanText(`ref ${backwards}`).masked, `ref ${backwards}`)
  })

  test('numbers that only look like cards are left alone', () => {
    const clean = [
      '4111 1111 1111 1112', // fails Luhn
      'call me on +44 7700 900123',
      'the meeting is on 2026-11-24 at 14:30',
      'order 1234567890123456 shipped', // starts with 1
      'tracking 9400111899223100012345', // too long, starts with 9
      'IBAN DE89 3704 0044 0532 0130 01', // IBAN checksum fails
      'amount 1250.00 EUR on 24/11/2026',
    ]
    for (const text of clean) assert.deepEqual(scanText(text), { masked: text, findings: [] }, text)
  })

  test('a CVV next to a card, or named as one, is masked too', () => {
    assert.equal(scanText('4111111111111111 123').masked, '[card •••• 1111] [CVV]')
    assert.equal(scanText('4111 1111 1111 1111, exp 12/28, 737').masked, '[card •••• 1111], exp 12/28, [CVV]')
    assert.equal(scanText('the security code is 0421').masked, 'the security code is [CVV]')
    assert.equal(scanText('CVV: 999').masked, 'CVV: [CVV]')
    assert.equal(scanText('I have 3 kids').masked, 'I have 3 kids')
  })

  test('checksum-valid IBANs are masked to country and last four', () => {
    assert.equal(scanText('pay DE89 3704 0044 0532 0130 00 please').masked, 'pay [IBAN DE•• •••• 3000] please')
    assert.equal(scanText('GB33BUKB20201555555555').masked, '[IBAN GB•• •••• 5555]')
    assert.equal(ibanValid('FR1420041010050500013M02606'), true)
    assert.equal(ibanValid('GB33BUKB20201555555556'), false)
  })

  test("a tenant's own patterns (an account or national id format) are masked by their label", () => {
    const result = scanText('my NI number is AB123456C and account 12-34-56 87654321', [
      { label: 'national insurance number', pattern: '\\b[A-CEGHJ-PR-TW-Z]{2}\\d{6}[A-D]\\b' },
      { label: 'account', pattern: '\\b\\d{2}-\\d{2}-\\d{2} \\d{8}\\b' },
    ])
    assert.equal(result.masked, 'my NI number is [national insurance number] and account [account]')
    assert.deepEqual(
      result.findings.map((f) => f.label),
      ['national insurance number', 'account'],
    )
  })

  test("tenant patterns run on RE2: a pattern that would backtrack for ever on JavaScript's engine finishes", () => {
    // On a backtracking engine this is about 2^40 steps; RE2 is linear in the text.
    assert.deepEqual(scanText(`${'a'.repeat(40)}!`, [{ label: 'x', pattern: '(a+)+$' }]).findings, [])
    assert.throws(() => compilePattern('(?<=a)b'), InvalidPattern)
    assert.throws(() => compilePattern('(\\d)\\1'), InvalidPattern)
  })

  test('positions of tenant matches count UTF-16 units after emoji and accents, as the masking needs', () => {
    const result = scanText('é😀 id AB123456, card 4111 1111 1111 1111', [{ label: 'id', pattern: '[A-Z]{2}\\d{6}' }])
    assert.equal(result.masked, 'é😀 id [id], card [card •••• 1111]')
  })

  test('findings give positions in the original text and never the value', () => {
    const text = 'card 4111 1111 1111 1111 cvv 123'
    const { findings } = scanText(text)
    assert.deepEqual(findings, [
      { kind: 'card-number', start: 5, end: 24 },
      { kind: 'cvv', start: 29, end: 32 },
    ])
    assert.ok(!JSON.stringify(findings).includes('4111'))
  })

  test('the corpus: every spelling of a card, IBAN or CVV is caught, and look-alikes are not (false-positive rate)', () => {
    const caught = mustCatch()
    assert.ok(caught.length >= 100)
    const missed = caught.filter(({ text, secret, kind }) => {
      const { masked, findings } = scanText(text)
      // Whatever the spelling, no run of the secret's middle survives in the masked text, read as DLP reads it.
      const left = normalizeForDlp(masked)
        .text.replace(/[^0-9a-z]/gi, '')
        .toUpperCase()
      return !findings.some((f) => f.kind === kind) || (secret !== '' && left.includes(secret.slice(4, -4)))
    })
    assert.deepEqual(
      missed.map((m) => `${m.spelling}: ${JSON.stringify(m.text)}`),
      [],
    )
    const lookAlikes = mustNotCatch()
    assert.ok(lookAlikes.length >= 100)
    const falsePositives = lookAlikes.filter(({ text }) => scanText(text).findings.length > 0)
    const rate = (100 * falsePositives.length) / lookAlikes.length
    console.log(
      `DLP corpus: ${caught.length - missed.length}/${caught.length} spellings caught, ` +
        `${falsePositives.length}/${lookAlikes.length} look-alikes flagged (false-positive rate ${rate.toFixed(1)}%)`,
    )
    assert.deepEqual(
      falsePositives.map((f) => `${f.category}: ${f.text}`),
      [],
    )
  })

  test('the mask covers exactly what was typed: fullwidth, zero-width and astral digits map back to their places', () => {
    const fullwidth = 'card ４１１１ １１１１ １１１１ １１１１ ok'
    assert.equal(scanText(fullwidth).masked, 'card [card •••• 1111] ok')
    assert.deepEqual(scanText(fullwidth).findings, [{ kind: 'card-number', start: 5, end: 24 }])
    const bold = 'x 𝟒𝟏𝟏𝟏 𝟏𝟏𝟏𝟏 𝟏𝟏𝟏𝟏 𝟏𝟏𝟏𝟏 y'
    // Mathematical digits are two UTF-16 units each: the finding spans all of them, and nothing else.
    assert.deepEqual(scanText(bold).findings, [{ kind: 'card-number', start: 2, end: 2 + 16 * 2 + 3 }])
    assert.equal(scanText(bold).masked, 'x [card •••• 1111] y')
    assert.equal(scanText('4​111 1111 1111 1111​!').masked, '[card •••• 1111]​!')
    assert.equal(scanText('pay ٤١١١.١١١١.١١١١.١١١١').masked, 'pay [card •••• 1111]')
    assert.equal(scanText('iban de89-3704-0044-0532-0130-00.').masked, 'iban [IBAN DE•• •••• 3000].')
  })

  test("a tenant's pattern matches the normalized text too: fullwidth or zero-width spellings do not slip past it", () => {
    const patterns = [{ label: 'customer number', pattern: 'CN-\\d{8}' }]
    assert.equal(scanText('ref CN-１２３４５６７８', patterns).masked, 'ref [customer number]')
    assert.equal(scanText('ref CN-1234​5678', patterns).masked, 'ref [customer number]')
    assert.equal(scanText('ref CN-12345678', patterns).masked, 'ref [customer number]')
  })

  test('Luhn check: the ISO/IEC 7812 examples', () => {
    assert.equal(luhnValid('79927398713'), true)
    assert.equal(luhnValid('79927398710'), false)
  })
})

describe('POST /v1/dlp/scan', () => {
  test('an agent checks an outgoing public-channel text; the value never reaches the audit log', async () => {
    const server = await startTestServer()
    try {
      const bank = await createTestBank(server)
      const scan = (body: unknown, token = bank.agentToken) =>
        fetch(`${server.url}/v1/dlp/scan`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        })
      const response = await scan({ text: 'Your card 4111 1111 1111 1111 is blocked' })
      assert.equal(response.status, 200)
      assert.equal((await response.json()).masked, 'Your card [card •••• 1111] is blocked')
      assert.equal((await scan({ text: 'x', patterns: [{ label: 'bad', pattern: '(' }] })).status, 400)
      // The bank's own patterns apply to every scan, beside the ones a caller adds.
      const policy = await fetch(`${server.url}/v1/policies/dlp`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ patterns: [{ label: 'customer number', pattern: 'CN-\\d{8}' }] }),
      })
      assert.equal(policy.status, 200)
      // Too many patterns, or one too long, is refused whole and the policy in force stays.
      const putPatterns = (patterns: unknown) =>
        fetch(`${server.url}/v1/policies/dlp`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ patterns }),
        })
      const many = Array.from({ length: 21 }, (_, i) => ({ label: `p${i}`, pattern: `X${i}` }))
      assert.equal((await putPatterns(many)).status, 400)
      assert.equal((await putPatterns([{ label: 'long', pattern: 'a'.repeat(201) }])).status, 400)
      const both = await scan({ text: 'CN-12345678 and ref R-99', patterns: [{ label: 'ref', pattern: 'R-\\d+' }] })
      assert.equal((await both.json()).masked, '[customer number] and ref [ref]')
      const { token } = await bank.staffToken('compliance')
      assert.equal((await scan({ text: 'x' }, token)).status, 403)
      await server.flushAudit()
      const audit = await server.ctx.db
        .selectFrom('audit_events')
        .selectAll()
        .where('action', '=', 'dlp.mask')
        .execute()
      assert.equal(audit.length, 2)
      assert.ok(!JSON.stringify(audit).includes('4111') && !JSON.stringify(audit).includes('12345678'))
    } finally {
      await server.stop()
    }
  })
})
