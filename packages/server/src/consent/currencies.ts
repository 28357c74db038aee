import currencyCodes from 'currency-codes'

/**
 * The ISO 4217 currency an amount is in, with its minor units (JPY 0, EUR 2, BHD 3), from the maintained ISO list
 * (`currency-codes`, built from the ISO 4217 maintenance agency's list one). Codes that are not money a customer pays
 * with are refused: unassigned ones (ZZZ), and funds, precious metals, testing and "no currency" codes, which the list
 * names only for pseudo-entities (ZZ…), never for a country.
 */
export function isoCurrency(code: string): { code: string; minorUnits: number } | undefined {
  const found = currencyCodes.code(code)
  if (!found || found.countries.every((country) => country.toUpperCase().startsWith('ZZ'))) return undefined
  return { code: found.code, minorUnits: found.digits }
}
