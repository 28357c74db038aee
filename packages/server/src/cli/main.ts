import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { type Command, type CommandContext, command, out, UsageError } from '../platform/command.ts'
import { type Config, ConfigError, loadConfig } from '../platform/config.ts'
import { migrateToLatest, openDatabase } from '../platform/db/database.ts'
import { readTrustedKeys, TrustedKeysError } from '../platform/hash-chain/trusted-keys.ts'
import { verifyWitnessLog, WitnessFileError } from '../platform/hash-chain/witness.ts'
import { type AccessTableRow, formatAccessTable } from '../platform/http/access-rule.ts'
import { Problem } from '../platform/http/problems.ts'
import { RetireRefused } from '../platform/keyring/reencrypt.ts'
import { createLogger } from '../platform/logging.ts'
import { modules, startServer } from '../server.ts'
import { ensureWebBuild } from '../web/build-on-start.ts'
import { keyCommands } from './key-commands.ts'

/**
 * The access table the server assembles from its modules: a dev-mode server, in memory, in a directory of its own
 * (neither the environment's database nor ./strongroom-data is touched), started, read and stopped.
 */
async function assembledAccessTable(): Promise<readonly AccessTableRow[]> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-routes-'))
  try {
    const config = loadConfig(
      {},
      { mode: 'dev', devSeed: false, port: 0, host: '127.0.0.1', dataDir, logLevel: 'silent' },
    )
    const server = await startServer(config, { inMemoryDatabase: true })
    await server.close()
    return server.accessTable
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}

/** Serves until SIGTERM or SIGINT, then drains and stops (forced after 25 s). */
async function serve(config: Config): Promise<void> {
  await ensureWebBuild(config, createLogger(config.logLevel))
  const server = await startServer(config)
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    server.ctx.log.info({ signal }, 'shutting down')
    setTimeout(() => process.exit(1), 25_000).unref()
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

/** The commands of the server as a whole; each capability's own come from its module. */
const serverCommands: readonly Command[] = [
  command({
    name: 'start',
    summary: 'serve HTTP and WebSocket (npm start)',
    async run(_values, { config }) {
      await serve(config())
    },
  }),
  command({
    name: 'routes',
    summary:
      "print the access table: every route (dev mode's included) and who may call it,\nas each module declares it beside the handler",
    async run() {
      process.stdout.write(`${formatAccessTable(await assembledAccessTable())}\n`)
    },
  }),
  command({
    name: 'migrate',
    summary: 'apply pending database migrations and exit',
    async run(_values, { config }) {
      const database = await openDatabase(config())
      try {
        out({ applied: await migrateToLatest(database.db) })
      } finally {
        await database.close()
      }
    },
  }),
  command({
    name: 'witness verify',
    synopsis: '--keys JWKS [--witness FILE]',
    summary:
      'check a witness file by itself, without the database: every tree head signed\nby a trusted key, no fork, and each proven (RFC 6962 consistency) to extend the\none before; exit status 1 names the first that fails',
    options: { keys: { type: 'string' }, witness: { type: 'string' } },
    async run(values, { config }) {
      const file = values.witness ?? config().witnessFile
      if (!values.keys || !file) throw new UsageError('witness verify needs --keys JWKS and --witness FILE')
      const result = verifyWitnessLog(file, readTrustedKeys(values.keys))
      out(result)
      if (result.failure) {
        const { chain, treeSize, reason } = result.failure
        process.stderr.write(`strongroom: witness: ${chain}: tree head ${treeSize} ${reason}\n`)
        process.exitCode = 1
      }
    },
  }),
]

/** Every command, by who declares it: the server, its keys, then each module in the server's order. */
const commandGroups: readonly (readonly [string, readonly Command[]])[] = [
  ['server', serverCommands],
  ['keys', keyCommands(modules.flatMap((module) => module.encryptedColumns ?? []))],
  ...modules.flatMap((module) => (module.commands ? [[module.name, module.commands] as const] : [])),
]
const commands = commandGroups.flatMap(([, group]) => group)

const SUMMARY_COLUMN = 37

/** The usage `strongroom help` prints: one table of every command, grouped by the module that declares it. */
function usage(): string {
  const lines = ['usage: strongroom <command> [options]']
  for (const [owner, group] of commandGroups) {
    lines.push('', `${owner}:`)
    for (const { name, synopsis, summary } of group) {
      const head = `  ${name}${synopsis ? ` ${synopsis}` : ''}`
      const [first = '', ...rest] = summary.split('\n')
      const indent = ' '.repeat(SUMMARY_COLUMN)
      if (head.length < SUMMARY_COLUMN - 1) lines.push(`${head.padEnd(SUMMARY_COLUMN)}${first}`)
      else lines.push(head, `${indent}${first}`)
      for (const line of rest) lines.push(`${indent}${line}`)
    }
  }
  lines.push('', 'Configuration comes from the environment; see the README.')
  return lines.join('\n')
}

/** The command the arguments name: the longest whose words begin them. */
function findCommand(argv: readonly string[]): { found: Command; rest: string[] } | undefined {
  const matching = commands
    .map((candidate) => ({ candidate, words: candidate.name.split(' ') }))
    .filter(({ words }) => words.every((word, i) => argv[i] === word))
    .sort((a, b) => b.words.length - a.words.length)[0]
  return matching && { found: matching.candidate, rest: argv.slice(matching.words.length) }
}

async function main(argv: string[]): Promise<void> {
  if (argv.length === 0 || ['help', '--help', '-h'].includes(argv[0] ?? '')) {
    process.stdout.write(`${usage()}\n`)
    return
  }
  const match = findCommand(argv)
  if (!match) throw new UsageError(`unknown command "${argv.filter((arg) => !arg.startsWith('-')).join(' ')}"`)
  let values: ReturnType<typeof parseArgs>['values']
  try {
    ;({ values } = parseArgs({ args: match.rest, options: match.found.options ?? {}, strict: true }))
  } catch (error) {
    // Node's own message names the option: `Unknown option '--nmae'`.
    throw new UsageError(`${match.found.name}: ${error instanceof Error ? error.message : String(error)}`)
  }
  const context: CommandContext = { config: (loading) => loadConfig(process.env, {}, loading) }
  await match.found.run(values as never, context)
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`strongroom: ${error.message}\n\n${usage()}\n`)
    process.exit(2)
  }
  if (
    error instanceof ConfigError ||
    error instanceof TrustedKeysError ||
    error instanceof WitnessFileError ||
    error instanceof RetireRefused
  )
    process.stderr.write(`strongroom: ${error.message}\n`)
  else if (error instanceof Problem)
    process.stderr.write(`strongroom: ${error.message}${error.detail ? `: ${error.detail}` : ''}\n`)
  else process.stderr.write(`strongroom: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
