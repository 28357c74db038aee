import { readdirSync } from 'node:fs'
import type { Migration, MigrationProvider } from 'kysely/migration'

/**
 * Migrations are the numbered files in this folder (`NNN-what.ts`), applied in the order of their numbers: adding a
 * table is adding a file, and no list is edited (two changes that each add a migration no longer collide here). One
 * ordered history for every capability, because a migration may depend on any earlier one. Never edit a file that
 * has shipped.
 */
const MIGRATION_FILE = /^(\d{3}-[a-z0-9-]+)\.(?:ts|js)$/

const migrationFiles = readdirSync(new URL('.', import.meta.url))
  .map((file) => ({ file, name: MIGRATION_FILE.exec(file)?.[1] }))
  .filter((entry): entry is { file: string; name: string } => entry.name !== undefined)
  .sort((a, b) => a.name.localeCompare(b.name))

const duplicate = migrationFiles.find((entry, i) => migrationFiles[i - 1]?.name.slice(0, 3) === entry.name.slice(0, 3))
if (duplicate) throw new Error(`two migrations are numbered ${duplicate.name.slice(0, 3)}: renumber the newer one`)

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => {
    const migrations: Record<string, Migration> = {}
    for (const { file, name } of migrationFiles) {
      migrations[name] = (await import(new URL(file, import.meta.url).href)) as Migration
    }
    return migrations
  },
}

export const latestMigration = migrationFiles.at(-1)?.name as string
