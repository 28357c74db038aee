import {
  KEY_PACKAGE_CLOCK_SKEW_SECONDS,
  KEY_PACKAGE_LIFETIME_SECONDS,
  type MemberIdentity,
} from '@strongroom/sdk/mls-node'
import { type ExpressionBuilder, sql } from 'kysely'
import type { KeyPackage } from 'ts-mls'
import type { ServerContext } from '../platform/context.ts'
import type { Database } from '../platform/db/schema.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import { verifiedMember } from './credential-authority.ts'
import { decodeWhole, keyPackageRef, requireAllowedSuite, verifyKeyPackageSignature } from './framing.ts'

/** Below this many unclaimed key packages the owner is told to upload more. */
export const KEY_PACKAGE_LOW_WATER = 10
/** At most this many unclaimed key packages per owner: enough for a busy day, not a storage sink. */
export const KEY_PACKAGE_LIMIT = 200
/**
 * A key package counts in its owner's stock only while it has this long left to live, so that the owner, told its
 * stock is low (or its last-resort package missing), uploads new ones before the old run out. Members do so each time
 * they open, so one that opens at least once a month always has packages to be added with.
 */
export const KEY_PACKAGE_RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000
/** A key package is handed out only with this long left: the claimer checks its lifetime as it commits. */
const CLAIM_MARGIN_MS = 3600 * 1000

export interface KeyPackageOwner {
  kind: MemberIdentity['kind']
  id: string
  /** One of a staff member's browsers (named after its signature key); none for a device or the archive. */
  instance?: string | undefined
}

/** The owner's packages in the directory: of one instance when it names one (`''` stands for none). */
const ownedBy = (tenantId: string, owner: KeyPackageOwner) => (eb: ExpressionBuilder<Database, 'e2e_key_packages'>) =>
  eb.and([
    eb('tenant_id', '=', tenantId),
    eb('owner_kind', '=', owner.kind),
    eb('owner_id', '=', owner.id),
    eb('owner_instance', '=', owner.instance ?? ''),
  ])

export interface KeyPackageStock {
  available: number
  lastResort: boolean
  /** True when the owner should upload more. */
  low: boolean
}

/**
 * Stores key packages an owner uploaded, each checked first: an MLS key package, in an allowed suite, signed by its
 * leaf key, with a credential the authority signed for exactly this owner and key, valid now and for at most 90 days.
 * A last-resort package replaces the previous one and is handed out (never consumed) only when the others have run
 * out. With `replace`, the owner's unclaimed packages go first: a member that lost its state (and with it their
 * private halves) uploads anew, and a welcome made for a package it can no longer open would leave it out of the
 * group. The owner's expired packages go on every upload.
 */
export async function storeKeyPackages(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  owner: KeyPackageOwner,
  upload: { keyPackages: Uint8Array[]; lastResort?: Uint8Array | undefined; replace?: boolean },
): Promise<KeyPackageStock> {
  const checked: { ref: string; suite: string; bytes: Uint8Array; lastResort: boolean; expiresAt: Date }[] = []
  // Every package of one upload is of one instance: the uploader's stock, replacement and limit are that instance's.
  let instance: string | undefined
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
    if (index > 0 && member.instance !== instance) {
      throw new Problem('e2e/invalid-key-package', 'the key packages of one upload are of one signature key')
    }
    instance = member.instance
    checked.push({
      ref: await keyPackageRef(keyPackage),
      suite,
      bytes,
      lastResort: index >= upload.keyPackages.length,
      expiresAt: checkedLifetime(keyPackage),
    })
  }
  const now = new Date()
  const mine = ownedBy(tenantId, { ...owner, instance })
  return ctx.db.transaction().execute(async (trx) => {
    // Expired packages can never be used: they go, and leave room under the limit.
    await trx
      .deleteFrom('e2e_key_packages')
      .where(mine)
      .where('claimed_at', 'is', null)
      .where('expires_at', '<=', now)
      .execute()
    if (upload.replace || upload.lastResort) {
      // Replacing drops every unclaimed package, the last-resort one included; a new last-resort one drops the old.
      const stale = trx.deleteFrom('e2e_key_packages').where(mine)
      await (upload.replace ? stale.where('claimed_at', 'is', null) : stale.where('last_resort', '=', true)).execute()
    }
    const { count } = await trx
      .selectFrom('e2e_key_packages')
      .select((eb) => eb.fn.countAll<string>().as('count'))
      .where(mine)
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
            owner_instance: instance ?? '',
            ref: c.ref,
            cipher_suite: c.suite,
            key_package: c.bytes,
            last_resort: c.lastResort,
            created_at: now,
            expires_at: c.expiresAt,
            claimed_at: null,
            claimed_for: null,
          })),
        )
        .onConflict((oc) => oc.columns(['tenant_id', 'ref']).doNothing())
        .execute()
    }
    return stockWithin(trx, tenantId, { ...owner, instance })
  })
}

/**
 * The end of a key package's lifetime, after checking it the way RFC 9420 (section 7.3) asks of a bank's maximum: no
 * longer than the SDK makes them (90 days, and an hour of clock skew), and valid now.
 */
function checkedLifetime(keyPackage: KeyPackage): Date {
  const leaf = keyPackage.leafNode
  if (leaf.leafNodeSource !== 'key_package') {
    throw new Problem('e2e/invalid-key-package', 'the key package’s leaf carries no lifetime')
  }
  const { notBefore, notAfter } = leaf.lifetime
  const now = BigInt(Math.floor(Date.now() / 1000))
  const skew = BigInt(KEY_PACKAGE_CLOCK_SKEW_SECONDS)
  if (notAfter - notBefore > BigInt(KEY_PACKAGE_LIFETIME_SECONDS) + skew) {
    throw new Problem(
      'e2e/invalid-key-package',
      `a key package may live at most ${KEY_PACKAGE_LIFETIME_SECONDS / 86_400} days`,
    )
  }
  if (notBefore > now + skew || notAfter <= now) {
    throw new Problem('e2e/invalid-key-package', 'the key package is not valid now (expired, or not yet valid)')
  }
  return new Date(Number(notAfter) * 1000)
}

async function stockWithin(
  db: ServerContext['db'],
  tenantId: string,
  owner: KeyPackageOwner,
): Promise<KeyPackageStock> {
  const rows = await db
    .selectFrom('e2e_key_packages')
    .select(['last_resort', (eb) => eb.fn.countAll<string>().as('count')])
    .where(ownedBy(tenantId, owner))
    .where('claimed_at', 'is', null)
    .where('expires_at', '>', new Date(Date.now() + KEY_PACKAGE_RENEW_BEFORE_MS))
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
 * Hands out one key package per owner for adding them to a conversation's group, never an expired one: of the
 * instance an owner names (one of a staff member's browsers), else of any of its instances. An ordinary
 * package is consumed in the same statement that picks it (SKIP LOCKED: two claims never get the same one); when none
 * is left the owner's last-resort package is handed out instead. The claim records the conversation, so that the commit adding the owner
 * is accepted there and its welcome routed to the owner.
 */
export async function claimKeyPackages(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  conversationId: string,
  owners: KeyPackageOwner[],
): Promise<ClaimedKeyPackage[]> {
  const claimableUntil = new Date(Date.now() + CLAIM_MARGIN_MS)
  return ctx.db.transaction().execute(async (trx) => {
    const claimed: ClaimedKeyPackage[] = []
    for (const owner of owners) {
      const { rows } = await sql<{ ref: string; key_package: Uint8Array; owner_instance: string }>`
        update e2e_key_packages set claimed_at = now(), claimed_for = ${conversationId}
        where id = (
          select id from e2e_key_packages
          where tenant_id = ${tenantId} and owner_kind = ${owner.kind} and owner_id = ${owner.id}
            and (${owner.instance ?? null}::text is null or owner_instance = ${owner.instance ?? null})
            and last_resort = false and claimed_at is null and expires_at > ${claimableUntil}
          order by created_at, id
          limit 1
          for update skip locked
        )
        returning ref, key_package, owner_instance
      `.execute(trx)
      const fresh = rows[0]
      if (fresh) {
        claimed.push({
          owner: withInstance(owner, fresh),
          ref: fresh.ref,
          keyPackage: fresh.key_package,
          lastResort: false,
        })
        continue
      }
      let lastResortQuery = trx
        .selectFrom('e2e_key_packages')
        .select(['ref', 'key_package', 'owner_instance'])
        .where('tenant_id', '=', tenantId)
        .where('owner_kind', '=', owner.kind)
        .where('owner_id', '=', owner.id)
        .where('last_resort', '=', true)
        .where('expires_at', '>', claimableUntil)
      if (owner.instance !== undefined) lastResortQuery = lastResortQuery.where('owner_instance', '=', owner.instance)
      const lastResort = await lastResortQuery.orderBy('created_at', 'desc').executeTakeFirst()
      if (!lastResort) {
        throw new Problem('e2e/no-key-package', `${owner.kind} ${owner.id} has no key package to claim`)
      }
      claimed.push({
        owner: withInstance(owner, lastResort),
        ref: lastResort.ref,
        keyPackage: lastResort.key_package,
        lastResort: true,
      })
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
    .select(['owner_kind', 'owner_id', 'owner_instance'])
    .where('tenant_id', '=', tenantId)
    .where('ref', '=', ref)
    .where((eb) => eb.or([eb('claimed_for', '=', conversationId), eb('last_resort', '=', true)]))
    .executeTakeFirst()
  return row ? withInstance({ kind: row.owner_kind, id: row.owner_id }, row) : undefined
}

/** The owner with the instance the directory recorded for its package (none for `''`). */
function withInstance(owner: KeyPackageOwner, row: { owner_instance: string }): KeyPackageOwner {
  const { instance: _any, ...person } = owner
  return row.owner_instance === '' ? person : { ...person, instance: row.owner_instance }
}
