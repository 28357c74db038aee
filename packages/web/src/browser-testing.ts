/**
 * What the browser tests share: Debian's Chromium (never a downloaded browser), where screenshots go, a watch on a
 * page for script errors, policy violations and failed requests, and the accessibility check.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import path from 'node:path'
import AxeBuilder from '@axe-core/playwright'
import type { Page } from 'playwright-core'

export const CHROMIUM = process.env.STRONGROOM_CHROMIUM ?? '/usr/bin/chromium'
/** For `describe`'s skip option: false when Chromium is there, else why the browser tests cannot run. */
export const withoutChromium = existsSync(CHROMIUM)
  ? false
  : `no Chromium at ${CHROMIUM} (apt-get install -y chromium; .ci/run does it)`
export const outputDir = path.join(import.meta.dirname, '..', 'test-output')

/**
 * Collects into `problems` every script error, CSP violation and failed request of the page, except the failed
 * requests `expected` accepts (and the favicon, which the pages do not have), so that a test can fail on them.
 */
export function watchPage(
  page: Page,
  problems: string[],
  expected: (status: number, pathname: string) => boolean = () => false,
): void {
  // Generous: a loaded CI machine shares two cores between this browser, the server and other test files.
  page.setDefaultTimeout(60_000)
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      problems.push(message.text())
    }
  })
  page.on('pageerror', (error) => problems.push(error.message))
  page.on('response', (response) => {
    const { pathname } = new URL(response.url())
    if (response.status() >= 400 && pathname !== '/favicon.ico' && !expected(response.status(), pathname)) {
      problems.push(`${response.status()} ${pathname}`)
    }
  })
}

/** axe-core on the page as it is: no serious or critical violation. */
export async function assertAccessible(page: Page, screen: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze()
  const serious = results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)
  assert.deepEqual(serious, [], `${screen}: accessibility violations`)
}
