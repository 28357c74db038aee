import { usingNats, usingPostgres } from './harness.ts'
import { softHsmMissing } from './softhsm.ts'

/**
 * For `describe`'s skip option, where tests need something outside Node (Chromium, PostgreSQL, NATS, HAProxy,
 * SoftHSM2): `missing` is false when it is there, else why the tests cannot run. Outside CI they then skip with that
 * reason. Under CI=true nothing skips: the file fails with the reason, so a green CI run is one that ran every test.
 */
export function skipUnlessPresent(missing: string | false): string | false {
  if (missing === false) return false
  if (process.env.CI === 'true') throw new Error(`${missing}: under CI=true this test must run, not skip`)
  return missing
}

/** Tests of several nodes: a shared PostgreSQL and NATS. */
export const needsPostgresAndNats = () =>
  skipUnlessPresent(!(usingPostgres && usingNats) && 'needs DATABASE_URL and NATS_URL')

/** Tests of production mode, which refuses the embedded database. */
export const needsPostgres = () => skipUnlessPresent(!usingPostgres && 'needs PostgreSQL (DATABASE_URL)')

/** Tests of the PKCS#11 key provider: SoftHSM2, with a token of their own. */
export const needsSoftHsm = () => skipUnlessPresent(softHsmMissing())
