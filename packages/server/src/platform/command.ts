import type { ParseArgsConfig, parseArgs } from 'node:util'
import type { Bus } from './bus/bus.ts'
import { openBus } from './bus/open-bus.ts'
import type { Config } from './config.ts'
import { type Db, migrateToLatest, openDatabase } from './db/database.ts'
import type { KeyProvider } from './keyring/key-provider.ts'
import { Keyring } from './keyring/keyring.ts'
import { openKeyProvider } from './keyring/open-provider.ts'

type Options = NonNullable<ParseArgsConfig['options']>
type Values<O extends Options> = ReturnType<
  typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>
>['values']

/**
 * One `strongroom` command as the capability that owns it declares it: the words that name it, the options it takes
 * (nothing else is accepted), the lines `strongroom help` prints, and what it does.
 */
export interface Command<O extends Options = Options> {
  /** The words that name it: `tenant create`. */
  readonly name: string
  /** Its options as the usage shows them: `--name NAME`. */
  readonly synopsis?: string
  /** What it does, for an operator; wrapped lines are kept as written. */
  readonly summary: string
  readonly options?: O
  run(values: Values<O>, context: CommandContext): Promise<void>
}

/** What the command line gives a command besides its options. */
export interface CommandContext {
  /** The configuration from the environment, read when the command asks (a bad setting stops it, naming it). */
  config(loading?: { creatingKeyFiles?: boolean }): Config
}

/** Declares a command with its option values typed from its options. */
export function command<const O extends Options>(declared: Command<O>): Command {
  return declared as unknown as Command
}

/** A command called wrongly: the message and the usage go to stderr, and the exit status is 2. */
export class UsageError extends Error {}

/** Prints a command's result as indented JSON on stdout. */
export function out(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
}

/** A progress bar on stderr for long runs, when a person is watching. */
export function progress(label: string, done: number, total: number): void {
  if (!process.stderr.isTTY || total === 0) return
  const width = 30
  const filled = Math.round((done / total) * width)
  const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`
  process.stderr.write(`\r${label} [${bar}] ${done}/${total}${done >= total ? '\n' : ''}`)
}

/** What a command works on: the database (migrated), the keyring and the key provider under it. */
export type Storage = { keyring: Keyring; db: Db; provider: KeyProvider }

/** Opens what an administrative command works on, migrated, and closes it afterwards. */
export async function withStorage<T>(config: Config, work: (storage: Storage) => Promise<T>): Promise<T> {
  const provider = await openKeyProvider(config, { create: config.mode === 'dev' })
  try {
    const database = await openDatabase(config)
    try {
      await migrateToLatest(database.db)
      return await work({ keyring: new Keyring(database.db, provider), db: database.db, provider })
    } finally {
      await database.close()
    }
  } finally {
    await provider.close()
  }
}

/**
 * Storage and the bus, for a command whose effect the running nodes must hear of at once (closing streams): the
 * publication leaves before the bus closes.
 */
export async function withStorageAndBus<T>(
  config: Config,
  work: (ctx: Storage & { bus: Bus }) => Promise<T>,
): Promise<T> {
  return withStorage(config, async (storage) => {
    const bus = await openBus(config)
    try {
      return await work({ ...storage, bus })
    } finally {
      await bus.close()
    }
  })
}
