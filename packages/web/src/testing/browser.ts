/**
 * What the browser tests share: Debian's Chromium (never a browser Playwright downloads), where screenshots go, and
 * the accessibility check every screen passes.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import path from 'node:path'
import AxeBuilder from '@axe-core/playwright'
import type { Page } from 'playwright-core'

export const CHROMIUM = process.env.STRONGROOM_CHROMIUM ?? '/usr/bin/chromium'
/** The reason to skip, when there is no Chromium to drive. */
export const skipWithoutChromium = existsSync(CHROMIUM)
  ? false
  : `no Chromium at ${CHROMIUM} (apt-get install -y chromium; .ci/run does it)`
export const outputDir = path.join(import.meta.dirname, '..', '..', 'test-output')

/** axe-core on the page as it is: no serious or critical violation. */
export async function assertAccessible(page: Page, screen: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze()
  const serious = results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)
  assert.deepEqual(serious, [], `${screen}: accessibility violations`)
}
