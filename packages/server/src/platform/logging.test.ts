import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { createLogger } from './logging.ts'

test('secrets, message bodies and phone numbers never reach a log line', () => {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk))
      done()
    },
  })
  const log = createLogger('info', sink)
  log.info(
    {
      req: { headers: { authorization: 'Bearer srs_secret1', dpop: 'eyJproof', cookie: 'sid=1' } },
      token: 'srd_secret2',
      enrolment: { enrolmentCode: 'ABCD-EFGH' },
      message: { ciphertext: 'c2VjcmV0', body: 'hello' },
      customer: { phone: '+447700900123' },
      count: 3,
    },
    'request',
  )
  const line = lines.join('')
  for (const secret of ['srs_secret1', 'eyJproof', 'sid=1', 'srd_secret2', 'ABCD-EFGH', 'c2VjcmV0', 'hello', '+4477']) {
    assert.ok(!line.includes(secret), `${secret} leaked: ${line}`)
  }
  assert.match(line, /"count":3/)
  assert.match(line, /\[redacted\]/)
})
