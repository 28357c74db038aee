import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatMoney, parseMoney } from './money.ts'

test('amounts typed as people write them become exact minor units', () => {
  const cases: [string, string, number][] = [
    ['1250', 'EUR', 125000],
    ['1250.5', 'EUR', 125050],
    ['1,250.50', 'EUR', 125050],
    ['1.250,50', 'EUR', 125050],
    ['1 250,5', 'EUR', 125050],
    ["1'250.05", 'CHF', 125005],
    ['1,250', 'EUR', 125000],
    ['1.250.000', 'EUR', 125000000],
    ['0.01', 'EUR', 1],
    ['0,1', 'GBP', 10],
    ['1500', 'JPY', 1500],
    ['1,500', 'JPY', 1500],
    ['1.250', 'BHD', 1250],
    ['10000000000000', 'EUR', 10 ** 15],
  ]
  for (const [typed, currency, minor] of cases) assert.deepEqual(parseMoney(typed, currency), { minor }, typed)
})

test('what is not exactly an amount is refused, with the reason', () => {
  const cases: [string, string, string][] = [
    ['', 'EUR', 'Enter an amount.'],
    ['12.5.3', 'EUR', 'Enter the amount in figures, like 1250.00.'],
    ['-5', 'EUR', 'Enter the amount in figures, like 1250.00.'],
    ['1e3', 'EUR', 'Enter the amount in figures, like 1250.00.'],
    ['1,,250', 'EUR', 'Enter the amount in figures, like 1250.00.'],
    ['1.', 'EUR', 'Enter the amount in figures, like 1250.00.'],
    ['12,34,567', 'EUR', 'Enter the amount in figures, like 1250.00.'],
    ['1,234.567', 'EUR', 'EUR has 2 decimal places.'],
    ['1.2345', 'EUR', 'EUR has 2 decimal places.'],
    ['15.5', 'JPY', 'JPY has no decimal places.'],
    ['0.00', 'EUR', 'The amount must be more than zero.'],
    ['10000000000000.01', 'EUR', 'That amount is too large.'],
    ['99999999999999999999', 'EUR', 'That amount is too large.'],
  ]
  for (const [typed, currency, error] of cases) assert.deepEqual(parseMoney(typed, currency), { error }, typed)
})

test('minor units are shown as money in the currency', () => {
  assert.equal(formatMoney(125000, 'EUR', 'en-GB'), '€1,250.00')
  assert.equal(formatMoney(1500, 'JPY', 'en-GB'), 'JP¥1,500')
  // ICU versions differ in the grouping apostrophe and the space after the symbol.
  assert.equal(
    formatMoney(125005, 'CHF', 'de-CH').replace(/[’\s]/g, (c) => (c === '’' ? "'" : ' ')),
    "CHF 1'250.05",
  )
})
