import os from 'node:os'
import { keyPackageStock } from '../e2e/key-packages.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'

/** How often a running archive member says so, and how long after its last word it counts as gone. */
export const PRESENCE_INTERVAL_MS = 5_000
const GONE_AFTER_MS = 3 * PRESENCE_INTERVAL_MS

/** Published by a node that needs the archive's key packages for a tenant and runs no archive member itself. */
export const ARCHIVE_KEY_PACKAGES_WANTED_SUBJECT_PREFIX = 'sr.archive.key-packages-wanted.'

/** Records that the archive member of this partition runs on this node, now. */
export async function markArchiveMemberPresent(
  ctx: Pick<ServerContext, 'db' | 'config'>,
  partition: string,
): Promise<void> {
  const values = { node: `${os.hostname()}:${ctx.config.port}`, seen_at: new Date() }
  await ctx.db
    .insertInto('archive_member_presence')
    .values({ partition, ...values })
    .onConflict((oc) => oc.column('partition').doUpdateSet(values))
    .execute()
}

/**
 * Whether an archive member runs somewhere, as far as the database knows: `running` when every partition of the
 * newest partitioning (`i/n`) was heard from lately, with where each runs.
 */
export async function archiveMemberPresence(
  ctx: Pick<ServerContext, 'db'>,
): Promise<{ running: boolean; members: { partition: string; node: string }[] }> {
  const rows = await ctx.db
    .selectFrom('archive_member_presence')
    .select(['partition', 'node'])
    .where('seen_at', '>', new Date(Date.now() - GONE_AFTER_MS))
    .orderBy('partition')
    .execute()
  const count = Math.max(0, ...rows.map((row) => Number(row.partition.split('/')[1])))
  const covered = new Set(rows.filter((row) => row.partition.endsWith(`/${count}`)).map((row) => row.partition))
  return { running: count > 0 && covered.size === count, members: rows }
}

const WANT_WAIT_MS = 5_000
const WANT_POLL_MS = 100

/**
 * On a node that runs no archive member: makes sure the archive has a key package for the tenant before one is
 * claimed. When it has none (a tenant made after the archive member started), asks the archive member over the bus
 * and waits for it to upload some. Refuses with a problem that says what to do when no archive member runs, or when
 * it did not answer in time.
 */
export async function archiveKeyPackagesFromMember(
  ctx: Pick<ServerContext, 'db' | 'bus'>,
  tenantId: string,
): Promise<void> {
  const archive = { kind: 'archive', id: 'archive' } as const
  const stocked = async () => {
    const stock = await keyPackageStock(ctx, tenantId, archive)
    return stock.available > 0 || stock.lastResort
  }
  if (await stocked()) return
  if (!(await archiveMemberPresence(ctx)).running) throw new Problem('e2e/archive-unavailable')
  ctx.bus.publish(ARCHIVE_KEY_PACKAGES_WANTED_SUBJECT_PREFIX + tenantId, new Uint8Array())
  const deadline = Date.now() + WANT_WAIT_MS
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, WANT_POLL_MS))
    if (await stocked()) return
  }
  throw new Problem('e2e/archive-unavailable', 'the archive member did not publish key packages in time; try again')
}
