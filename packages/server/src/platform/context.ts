import type { Bus } from './bus/bus.ts'
import type { Config } from './config.ts'
import type { Db } from './db/database.ts'
import type { Keyring } from './keyring/keyring.ts'
import type { Logger } from './logging.ts'
import type { Metrics } from './metrics.ts'

/** The handles every capability receives: state is reached through these, never through module globals. */
export interface ServerContext {
  readonly config: Config
  readonly db: Db
  readonly bus: Bus
  readonly keyring: Keyring
  readonly metrics: Metrics
  readonly log: Logger
}
