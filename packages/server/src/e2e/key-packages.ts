import type { MemberIdentity } from '@strongroom/sdk/mls-node'
import { sql } from 'kysely'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import { verifiedMember } from './credential-authority.ts'
import { decodeWhole, keyPackageRef, requireAllowedSuite, verifyKeyPackageSignature } from './framing.ts'

/** Below this many unclaimed key packages the owner is told to upload more. */
export const KEY_PACKAGE_LOW_WATER = 10
/** At most this many unclaimed key packages per owner: enough for a busy day, not a storage sink. */
export const KEY_PACKAGE_LIMIT = 200

export interface KeyPackageOwner {
  kind: MemberIdentity['kind']
  id: string
}

export interface KeyPackageStock {
  available: number
  lastResort: boolean
  /** True when the owner should upload more. */
  low: boolean
}

/**
 * Stores key packages an owner uploaded, each checked first: an MLS key package, in an allowed suite, signed by its
 * leaf key, with a credential the authority signed for exactly this owner and key. A last-resort package replaces
 * the previous one and is handed out (never consumed) only when the others have run out. With `replace`, the owner's
 * unclaimed packages go first: a member that lost its state (and with it their private halves) uploads anew, and a
 * welcome made for a package it can no longer open would leave it out of the group.
 */
export async function storeKeyPackages(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  owner: KeyPackageOwner,
  upload: { keyPackages: Uint8Array[]; lastResort?: Uint8Array | undefined; replace?: boolean },
): Promise<KeyPackageStock> {
  const checked: { ref: string; suite: string; bytes: Uint8Array; lastResort: boolean }[] = []
  for (const [index, bytes] of [...upload.keyPackages, ...(upload.lastResort ? [upload.lastResort] : [])].entries()) {
    const message = decodeWhole(bytes)
    if (message.wireformat !== 'mls_key_package') throw new Problem('e2e/invalid-key-package', 'not a key package')
    const keyPackage = message.keyPackage
    const suite = requireAllowedSuite(keyPackage.cipherSuite)
    if (!(await verifyKeyPackageSignature(keyPackage))) {
      throw new Problem('e2e/invalid-key-package', 'the key package signature does not verify')
    }
    const leaf = keyPackage.leafNode
    const member = await verifiedMember(ctx, tenantId, leaf.credential, leaf.signaturePublicKey)
    if (!member || member.kind !== owner.kind || member.id !== owner.id) {
      throw new Problem('e2e/invalid-key-package', 'the credential is not the uploader’s')
    }
    checked.push({ ref: await keyPackageRef(keyPackage), suite, bytes, lastResort: index >= upload.keyPackages.length })
  }
  const now = new Date()
  return ctx.db.transaction().execute(async (trx) => {
    if (upload.replace || upload.lastResort) {
      // Replacing drops every unclaimed package, the last-resort one included; a new last-resort one drops the old.
      const stale = trx
        .deleteFrom('e2e_key_packages')
        .where('tenant_id', '=', tenantId)
        .where('owner_kind', '=', owner.kind)
        .where('owner_id', '=', owner.id)
      await (upload.replace ? stale.where('claimed_at', 'is', null) : stale.where('last_resort', '=', true)).execute()
    }
    const { count } = await trx
      .selectFrom('e2e_key_packages')
      .select((eb) => eb.fn.countAll<string>().as('count'))
      .where('tenant_id', '=', tenantId)
      .where('owner_kind', '=', owner.kind)
      .where('owner_id', '=', owner.id)
      .where('last_resort', '=', false)
      .where('claimed_at', 'is', null)
      .executeTakeFirstOrThrow()
    if (Number(count) + upload.keyPackages.length > KEY_PACKAGE_LIMIT) {
      throw new Problem('e2e/too-many-key-packages', `at most ${KEY_PACKAGE_LIMIT} unclaimed key packages per member`)
    }
    if (checked.length > 0) {
      await trx
        .insertInto('e2e_key_packages')
        .values(
          checked.map((c) => ({
            tenant_id: tenantId,
            id: newId('kpk'),
            owner_kind: owner.kind,
            owner_id: owner.id,
            ref: c.ref,
            cipher_suite: c.suite,
            key_package: c.bytes,
            last_resort: c.lastResort,
            created_at: now,
            claimed_at: null,
            claimed_for: null,
          })),
        )
        .onConflict((oc) => oc.columns(['tenant_id', 'ref']).doNothing())
        .execute()
    }
    return stockWithin(trx, tenantId, owner)
  })
}

async function stockWithin(
  db: ServerContext['db'],
  tenantId: string,
  owner: KeyPackageOwner,
): Promise<KeyPackageStock> {
  const rows = await db
    .selectFrom('e2e_key_packages')
    .select(['last_resort', (eb) => eb.fn.countAll<string>().as('count')])
    .where('tenant_id', '=', tenantId)
    .where('owner_kind', '=', owner.kind)
    .where('owner_id', '=', owner.id)
    .where('claimed_at', 'is', null)
    .groupBy('last_resort')
    .execute()
  const available = Number(rows.find((r) => !r.last_resort)?.count ?? 0)
  const lastResort = rows.some((r) => r.last_resort)
  return { available, lastResort, low: available < KEY_PACKAGE_LOW_WATER }
}

export function keyPackageStock(ctx: Pick<ServerContext, 'db'>, tenantId: string, owner: KeyPackageOwner) {
  return stockWithin(ctx.db, tenantId, owner)
}

export interface ClaimedKeyPackage {
  owner: KeyPackageOwner
  ref: string
  keyPackage: Uint8Array
  lastResort: boolean
}

/**
 * Hands out one key package per owner for adding them to a conversation's group. An ordinary package is consumed in
 * the same statement that picks it (SKIP LOCKED: two claims never get the same one); when none is left the owner's
 * last-resort package is handed out instead. The claim records the conversation, so that the commit adding the owner
 * is accepted there and its welcome routed to the owner.
 */
export async function claimKeyPackages(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  conversationId: string,
  owners: KeyPackageOwner[],
): Promise<ClaimedKeyPackage[]> {
  return ctx.db.transaction().execute(async (trx) => {
    const claimed: ClaimedKeyPackage[] = []
    for (const owner of owners) {
      const { rows } = await sql<{ ref: string; key_package: Uint8Array }>`
        update e2e_key_packages set claimed_at = now(), claimed_for = ${conversationId}
        where id = (
          select id from e2e_key_packages
          where tenant_id = ${tenantId} and owner_kind = ${owner.kind} and owner_id = ${owner.id}
            and last_resort = false and claimed_at is null
          order by created_at, id
          limit 1
          for update skip locked
        )
        returning ref, key_package
      `.execute(trx)
      const fresh = rows[0]
      if (fresh) {
        claimed.push({ owner, ref: fresh.ref, keyPackage: fresh.key_package, lastResort: false })
        continue
      }
      const lastResort = await trx
        .selectFrom('e2e_key_packages')
        .select(['ref', 'key_package'])
        .where('tenant_id', '=', tenantId)
        .where('owner_kind', '=', owner.kind)
        .where('owner_id', '=', owner.id)
        .where('last_resort', '=', true)
        .executeTakeFirst()
      if (!lastResort) {
        throw new Problem('e2e/no-key-package', `${owner.kind} ${owner.id} has no key package to claim`)
      }
      claimed.push({ owner, ref: lastResort.ref, keyPackage: lastResort.key_package, lastResort: true })
    }
    return claimed
  })
}

/**
 * The owner of a key package that was claimed for this conversation (or is a last-resort package), by reference:
 * how the delivery service knows whom a commit adds. Undefined for a package the directory never handed out here.
 */
export async function claimedOwner(
  db: ServerContext['db'],
  tenantId: string,
  conversationId: string,
  ref: string,
): Promise<KeyPackageOwner | undefined> {
  const row = await db
    .selectFrom('e2e_key_packages')
    .select(['owner_kind', 'owner_id'])
    .where('tenant_id', '=', tenantId)
    .where('ref', '=', ref)
    .where((eb) => eb.or([eb('claimed_for', '=', conversationId), eb('last_resort', '=', true)]))
    .executeTakeFirst()
  return row ? { kind: row.owner_kind, id: row.owner_id } : undefined
}
