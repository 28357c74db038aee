/** The largest amount the server accepts, in minor units. */
const MAX_MINOR = 10 ** 15

/** How many digits a currency has after the decimal point (EUR 2, JPY 0, BHD 3), as Intl knows it. */
export function fractionDigits(currency: string): number {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2
}

/** An amount in minor units as money in the agent's locale: 125000 EUR → "€1,250.00". */
export function formatMoney(minor: number, currency: string, locale?: string): string {
  return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(minor / 10 ** fractionDigits(currency))
}

const FIGURES = 'Enter the amount in figures, like 1250.00.'

/**
 * What the agent typed ("1250", "1,250.50", "1.250,50", "1 250,5") as minor units of the currency, or why it is not
 * an amount. The last separator is the decimal one when the other kind also appears, or when it appears once with no
 * more digits after it than the currency has; otherwise separators group thousands and must do so exactly.
 */
export function parseMoney(input: string, currency: string): { minor: number } | { error: string } {
  const digits = fractionDigits(currency)
  const places = `${currency} has ${digits === 0 ? 'no decimal places' : `${digits} decimal places`}.`
  const compact = input.replace(/[\s\u00a0\u202f'’]/g, '')
  if (compact === '') return { error: 'Enter an amount.' }
  if (!/^\d+([.,]\d+)*$/.test(compact)) return { error: FIGURES }
  const separators = compact.replace(/\d/g, '')
  const lastAt = Math.max(compact.lastIndexOf('.'), compact.lastIndexOf(','))
  let decimal = false
  if (lastAt >= 0) {
    const separator = compact.charAt(lastAt)
    const after = compact.length - lastAt - 1
    const once = separators.indexOf(separator) === separators.length - 1
    if (separators.includes(separator === '.' ? ',' : '.')) {
      if (!once) return { error: FIGURES }
      decimal = true
    } else if (once && after <= digits) {
      decimal = true
    } else if (after !== 3) {
      return { error: once ? places : FIGURES }
    }
  }
  const whole = decimal ? compact.slice(0, lastAt) : compact
  const fraction = decimal ? compact.slice(lastAt + 1) : ''
  if (fraction.length > digits) return { error: places }
  const groups = whole.split(/[.,]/)
  if (groups.length > 1 && ((groups[0] ?? '').length > 3 || groups.slice(1).some((g) => g.length !== 3))) {
    return { error: FIGURES }
  }
  const minor = Number(groups.join('') + fraction.padEnd(digits, '0'))
  if (!Number.isSafeInteger(minor) || minor > MAX_MINOR) return { error: 'That amount is too large.' }
  if (minor < 1) return { error: 'The amount must be more than zero.' }
  return { minor }
}
