import assert from 'node:assert/strict'
import { test } from 'node:test'
import { derBoolean, derChildren, derObjectIdentifier, derSmallInteger, readDer } from './der.ts'
import { AttestationError } from './verifier.ts'

const hex = (text: string) => Buffer.from(text.replaceAll(' ', ''), 'hex')
const badFormat = (error: unknown) => error instanceof AttestationError && error.code === 'bad-format'

test('reads OIDs, small integers, booleans and high tag numbers', () => {
  assert.equal(derObjectIdentifier(readDer(hex('06 0a 2b 06 01 04 01 d6 79 02 01 11'))), '1.3.6.1.4.1.11129.2.1.17')
  assert.equal(derObjectIdentifier(readDer(hex('06 09 2a 86 48 86 f7 63 64 08 02'))), '1.2.840.113635.100.8.2')
  assert.equal(derSmallInteger(readDer(hex('02 03 02 22 e0'))), 140000)
  assert.equal(derBoolean(readDer(hex('01 01 ff'))), true)
  const [entry] = derChildren(readDer(hex('30 07 bf 85 41 03 02 01 05')))
  assert.deepEqual([entry?.tagClass, entry?.tag], ['context', 705])
})

test('truncated, overlong, indefinite, trailing and negative encodings are bad-format', () => {
  const malformed = [
    '',
    '30',
    '30 05 02 01',
    '30 80 00 00',
    '02 01 05 00',
    '30 85 00 00 00 00 01',
    '1f ff ff ff ff 7f 00',
  ]
  for (const bytes of malformed) assert.throws(() => readDer(hex(bytes)), badFormat, bytes)
  assert.throws(() => derSmallInteger(readDer(hex('02 01 ff'))), badFormat)
  assert.throws(() => derSmallInteger(readDer(hex('04 01 01'))), badFormat)
  assert.throws(() => derChildren(readDer(hex('04 02 30 00'))), badFormat)
})
