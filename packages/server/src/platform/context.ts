import type { Bus } from './bus/bus.ts'
import type { Config } from './config.ts'
import type { Db } from './db/database.ts'
import type { KeyProvider } from './keyring/key-provider.ts'
import type { Keyring } from './keyring/keyring.ts'
import type { Logger } from './logging.ts'
import type { Metrics } from './metrics.ts'

/** The handles every capability receives: state is reached through these, never through module globals. */
export interface ServerContext {
  readonly config: Config
  readonly db: Db
  readonly bus: Bus
  readonly keyring: Keyring
  /**
   * The compliance archive's own key-encryption key (a separate key file or HSM slot), on nodes given one; the live
   * keyring never wraps archive keys.
   */
  readonly archiveKek: KeyProvider | undefined
  readonly metrics: Metrics
  readonly log: Logger
}
