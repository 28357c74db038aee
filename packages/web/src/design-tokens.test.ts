/**
 * The design system the three pages share (shared/base.css): its colours pass WCAG AA where they are used, its focus
 * ring is visible and is not the error colour, and the pages' own stylesheets draw with its tokens only, so that a
 * colour, a type size or a step of spacing is decided in one place. Axe's color-contrast rule checks the same on every
 * screen the browser tests open.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, test } from 'node:test'

const src = import.meta.dirname
const sharedSheet = path.join(src, 'shared', 'base.css')

/** The custom properties declared in the shared stylesheet's `:root`. */
function tokens(): Map<string, string> {
  const root = /:root\s*\{([^}]*)\}/.exec(readFileSync(sharedSheet, 'utf8'))?.[1] ?? ''
  return new Map([...root.matchAll(/(--[\w-]+):\s*([^;]+);/g)].map((m) => [m[1] as string, (m[2] as string).trim()]))
}

/** WCAG 2.x contrast ratio of two `#rrggbb` colours. */
function contrast(a: string, b: string): number {
  const luminance = (hex: string) => {
    const [r, g, bl] = [1, 3, 5].map((i) => {
      const c = Number.parseInt(hex.slice(i, i + 2), 16) / 255
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
    }) as [number, number, number]
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl
  }
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number]
  return (light + 0.05) / (dark + 0.05)
}

/** Every stylesheet of the pages but the shared one. */
function pageSheets(): { file: string; css: string }[] {
  return readdirSync(src, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.css') && path.join(src, file) !== sharedSheet)
    .map((file) => ({ file, css: readFileSync(path.join(src, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '') }))
}

describe('the design system (shared/base.css)', () => {
  const token = (name: string) => {
    const value = tokens().get(name)
    assert.match(value ?? '', /^#[0-9a-f]{6}$/, `${name} is a #rrggbb colour`)
    return value as string
  }

  test('every text colour reads at 4.5:1 (WCAG AA) on the backgrounds it is drawn on', () => {
    const pairs: [string, string[]][] = [
      ['--ink', ['--paper', '--wash', '--accent-wash']],
      ['--muted', ['--paper', '--wash', '--accent-wash', '--warning-wash', '--success-wash', '--danger-wash']],
      ['--accent', ['--paper', '--wash', '--accent-wash']],
      ['--accent-ink', ['--accent', '--danger', '--channel-sms', '--channel-whatsapp', '--channel-messenger']],
      ['--success', ['--paper', '--success-wash']],
      ['--warning', ['--paper', '--warning-wash']],
      ['--danger', ['--paper', '--wash', '--danger-wash']],
      ['--channel-sms', ['--paper', '--channel-sms-wash']],
      ['--channel-whatsapp', ['--paper', '--channel-whatsapp-wash']],
      ['--channel-messenger', ['--paper', '--channel-messenger-wash']],
      ['--channel-secure', ['--paper', '--channel-secure-wash']],
    ]
    const failing = pairs.flatMap(([text, backgrounds]) =>
      backgrounds
        .map((background) => ({ text, background, ratio: contrast(token(text), token(background)) }))
        .filter(({ ratio }) => ratio < 4.5)
        .map(({ background, ratio }) => `${text} on ${background}: ${ratio.toFixed(2)}:1`),
    )
    assert.deepEqual(failing, [])
  })

  test('the focus ring stands out (3:1) from both backgrounds and is not the error colour', () => {
    assert.ok(contrast(token('--focus'), token('--paper')) >= 3)
    assert.ok(contrast(token('--focus'), token('--wash')) >= 3)
    assert.notEqual(token('--focus'), token('--danger'))
    const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(token('--focus').slice(i, i + 2), 16)) as number[]
    assert.ok((b as number) > (r as number) && (b as number) > (g as number), 'the focus ring is blue, not red')
    assert.match(readFileSync(sharedSheet, 'utf8'), /:focus-visible\s*\{\s*outline: 3px solid var\(--focus\)/)
  })

  test('the pages draw with the tokens: no colour, type size, radius or spacing of their own', () => {
    const offences: string[] = []
    for (const { file, css } of pageSheets()) {
      for (const [, property, value] of css.matchAll(/([\w-]+)\s*:\s*([^;{}]+);/g)) {
        const v = (value as string).trim()
        const colour = /#[0-9a-f]{3,8}\b|\brgba?\(|\bhsla?\(|\b(white|black|red|green|blue|gray|grey)\b/i.test(v)
        const fontSize = property === 'font-size' && !/^var\(--text-[\w-]+\)$/.test(v)
        const radius =
          property?.startsWith('border') && property.endsWith('radius') && !/^(var\(--radius[\w-]*\)|50%|0)$/.test(v)
        const spacing =
          /^(margin|padding|gap|row-gap|column-gap)(-(top|right|bottom|left))?$/.test(property as string) &&
          /\b\d*\.?\d+(rem|px|em)\b/.test(v.replace(/var\([^)]*\)/g, ''))
        if (colour || fontSize || radius || spacing) offences.push(`${file}: ${property}: ${v}`)
      }
    }
    assert.deepEqual(offences, [])
  })
})
