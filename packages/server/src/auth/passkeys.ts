import { generateKeyPairSync } from 'node:crypto'
import {
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server'
import { type Actor, type AuditEvent, recordAudit } from '../audit/events.ts'
import { relyingPartyOf } from '../platform/config.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem, type ProblemKind } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import {
  type ChallengePurpose,
  consumePasskeyChallenge,
  issuePasskeyChallenge,
  PASSKEY_CHALLENGE_TTL_SECONDS,
  type PasskeyOwner,
} from './passkey-challenges.ts'

export type { PasskeyOwner }

type Ctx = Pick<ServerContext, 'db' | 'config'>

/** A registered passkey as its owner and the console see it (no key material). */
export interface Passkey {
  id: string
  credentialId: string
  owner: PasskeyOwner
  backupEligible: boolean
  backedUp: boolean
  transports: string[]
  createdAt: string
  lastUsedAt: string | null
}

/** What a verified assertion proves: this owner's passkey, with the user verified (PIN or biometric). */
export interface VerifiedPasskey {
  passkeyId: string
  credentialId: string
  owner: PasskeyOwner
  userVerified: boolean
  backupEligible: boolean
  backedUp: boolean
  /** When the passkey was registered: the cooling-off period runs from here. */
  createdAt: Date
}

const TIMEOUT_MS = PASSKEY_CHALLENGE_TTL_SECONDS * 1000
/** ES256, EdDSA, RS256: what platform authenticators and security keys make. */
const ALGORITHMS = [-7, -8, -257]
const TRANSPORTS = new Set<string>(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'])

function relyingParty(ctx: Ctx): { id: string; origins: string[] } {
  const rp = relyingPartyOf(ctx.config)
  if (!rp) throw new Problem('auth/passkeys-unavailable')
  return rp
}

/** The WebAuthn user handle: the owner's opaque id, never a name or a number. */
const userHandleOf = (owner: PasskeyOwner) => new TextEncoder().encode(owner.id)

type CredentialRow = Awaited<ReturnType<typeof ownerCredentials>>[number]

async function ownerCredentials(ctx: Pick<ServerContext, 'db'>, tenantId: string, owner: PasskeyOwner) {
  return ctx.db
    .selectFrom('passkey_credentials')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('owner_kind', '=', owner.kind)
    .where('owner_id', '=', owner.id)
    .orderBy('created_at')
    .execute()
}

function toPasskey(row: CredentialRow): Passkey {
  return {
    id: row.id,
    credentialId: row.credential_id,
    owner: { kind: row.owner_kind, id: row.owner_id },
    backupEligible: row.backup_eligible,
    backedUp: row.backed_up,
    transports: row.transports ? row.transports.split(' ') : [],
    createdAt: new Date(row.created_at).toISOString(),
    lastUsedAt: row.last_used_at ? new Date(row.last_used_at).toISOString() : null,
  }
}

export async function listPasskeys(ctx: Pick<ServerContext, 'db'>, tenantId: string, owner: PasskeyOwner) {
  return (await ownerCredentials(ctx, tenantId, owner)).map(toPasskey)
}

const descriptorOf = (row: CredentialRow) => ({
  id: row.credential_id,
  transports: (row.transports ? row.transports.split(' ') : []) as AuthenticatorTransportFuture[],
})

/**
 * Starts registering a passkey for an owner: a fresh challenge bound to them, user verification required, the
 * owner's existing passkeys excluded (an authenticator holds one credential per account), no attestation asked
 * (the bank trusts the enrolled session that registers it, not the authenticator's make).
 */
export async function passkeyRegistrationOptions(
  ctx: Ctx,
  tenantId: string,
  owner: PasskeyOwner,
  user: { name: string; displayName: string; rpName: string },
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const rp = relyingParty(ctx)
  const existing = await ownerCredentials(ctx, tenantId, owner)
  const challenge = await issuePasskeyChallenge(ctx, tenantId, 'register', owner)
  return generateRegistrationOptions({
    rpName: user.rpName,
    rpID: rp.id,
    userName: user.name,
    userDisplayName: user.displayName,
    userID: userHandleOf(owner),
    challenge: Buffer.from(challenge, 'base64url'),
    timeout: TIMEOUT_MS,
    attestationType: 'none',
    excludeCredentials: existing.map(descriptorOf),
    // Staff sign in without a name, so their passkey must be discoverable; a customer's should be.
    authenticatorSelection: {
      residentKey: owner.kind === 'staff' ? 'required' : 'preferred',
      userVerification: 'required',
    },
    supportedAlgorithmIDs: ALGORITHMS,
  })
}

/** Why the library refused a response, as a short stable reason for the audit log and registration errors. */
function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : ''
  if (/challenge/i.test(message)) return 'challenge-invalid'
  if (/origin/i.test(message)) return 'wrong-origin'
  if (/RP ID/i.test(message)) return 'wrong-rp-id'
  if (/User verification/i.test(message)) return 'user-not-verified'
  if (/User not present/i.test(message)) return 'user-not-present'
  if (/type/i.test(message)) return 'wrong-ceremony'
  return 'malformed'
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: string }).code === '23505'
}

/**
 * Finishes a registration: the response must answer the owner's unused, unexpired challenge (used up here, whatever
 * the outcome), come from one of the configured origins for the RP id, and have the user verified. The credential
 * id may belong to one owner of the tenant only.
 */
export async function registerPasskey(
  ctx: Ctx,
  tenantId: string,
  owner: PasskeyOwner,
  response: RegistrationResponseJSON,
  actor: Actor,
): Promise<Passkey> {
  const rp = relyingParty(ctx)
  const audit = (event: Pick<AuditEvent, 'outcome' | 'reason' | 'details' | 'target'>) => ({
    tenantId,
    actor,
    action: 'passkey.register',
    ...event,
  })
  let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>
  try {
    verified = await verifyRegistrationResponse({
      response,
      expectedChallenge: (challenge) => consumePasskeyChallenge(ctx, tenantId, 'register', owner, challenge),
      expectedOrigin: rp.origins,
      expectedRPID: rp.id,
      requireUserPresence: true,
      requireUserVerification: true,
      supportedAlgorithmIDs: ALGORITHMS,
    })
  } catch (error) {
    const reason = reasonOf(error)
    await recordAudit(ctx.db, audit({ outcome: 'failure', reason, target: owner }))
    throw new Problem('auth/passkey-registration-invalid', reason)
  }
  if (!verified.verified) {
    await recordAudit(ctx.db, audit({ outcome: 'failure', reason: 'signature-invalid', target: owner }))
    throw new Problem('auth/passkey-registration-invalid', 'signature-invalid')
  }
  const info = verified.registrationInfo
  const id = newId('pky')
  const transports = (response.response.transports ?? []).filter((t) => TRANSPORTS.has(t))
  const now = new Date()
  try {
    await ctx.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('passkey_credentials')
        .values({
          tenant_id: tenantId,
          id,
          credential_id: info.credential.id,
          owner_kind: owner.kind,
          owner_id: owner.id,
          public_key: info.credential.publicKey,
          sign_count: info.credential.counter,
          transports: transports.join(' '),
          aaguid: info.aaguid,
          backup_eligible: info.credentialDeviceType === 'multiDevice',
          backed_up: info.credentialBackedUp,
          created_at: now,
          last_used_at: null,
        })
        .execute()
      await recordAudit(
        trx,
        audit({
          outcome: 'success',
          target: { kind: 'passkey', id },
          details: {
            ownerKind: owner.kind,
            ownerId: owner.id,
            aaguid: info.aaguid,
            backupEligible: info.credentialDeviceType === 'multiDevice',
            backedUp: info.credentialBackedUp,
          },
        }),
      )
    })
  } catch (error) {
    if (!isUniqueViolation(error)) throw error
    await recordAudit(ctx.db, audit({ outcome: 'denied', reason: 'credential-in-use', target: owner }))
    throw new Problem('auth/passkey-in-use')
  }
  const [row] = (await ownerCredentials(ctx, tenantId, owner)).filter((r) => r.id === id)
  return toPasskey(row as CredentialRow)
}

/**
 * Starts an authentication: a fresh challenge, user verification required. With an owner (a customer stepping up
 * from their device) the challenge is theirs and their passkeys are offered; without one (a staff sign-in) the
 * authenticator offers its discoverable credentials for the RP and the credential says who signs in.
 */
export async function passkeyAuthenticationOptions(
  ctx: Ctx,
  tenantId: string,
  purpose: Exclude<ChallengePurpose, 'register'>,
  owner: PasskeyOwner | undefined,
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const rp = relyingParty(ctx)
  const allow = owner ? (await ownerCredentials(ctx, tenantId, owner)).map(descriptorOf) : []
  const challenge = await issuePasskeyChallenge(ctx, tenantId, purpose, owner)
  return generateAuthenticationOptions({
    rpID: rp.id,
    challenge: Buffer.from(challenge, 'base64url'),
    timeout: TIMEOUT_MS,
    userVerification: 'required',
    ...(allow.length > 0 ? { allowCredentials: allow } : {}),
  })
}

/**
 * A credential that verifies nothing, used when the presented credential id is unknown so that an unknown
 * credential costs the same work as a known one with a wrong signature, and fails the same way.
 */
const decoy = (() => {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = publicKey.export({ format: 'jwk' })
  const coordinate = (value: string | undefined) => Buffer.from(value as string, 'base64url')
  // COSE_Key {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}, CBOR by hand: a map of five pairs.
  return Buffer.concat([
    Buffer.from([0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20]),
    coordinate(jwk.x),
    Buffer.from([0x22, 0x58, 0x20]),
    coordinate(jwk.y),
  ])
})()

export interface AssertionExpectation {
  /** The challenge: a stored one of this purpose (used up here), or one the caller derives (a consent's hash). */
  challenge: { purpose: Exclude<ChallengePurpose, 'register'>; owner?: PasskeyOwner | undefined } | { value: string }
  /** Whose passkey it must be: an owner, or any owner of this kind (a staff sign-in). */
  owner: PasskeyOwner | { kind: PasskeyOwner['kind'] }
  /** How the attempt is audited, and the problem every refusal throws. */
  audit: { action: string; actor: Actor; target?: { kind: string; id: string }; chain?: string }
  refusal: ProblemKind
}

/**
 * Verifies a passkey assertion for a tenant: the credential must be the expected owner's, the challenge the expected
 * one, the origin and RP id configured, the user present and verified, the signature good, and the sign counter
 * higher than the last one seen (for a credential that counts). An unknown credential, another tenant's or another
 * owner's, a wrong signature and every other failure answer the same `refusal`; the audit log says which it was. A
 * counter that did not move forward on a validly signed assertion means two copies of one key: refused and audited
 * as a possible clone.
 */
export async function verifyPasskeyAssertion(
  ctx: Ctx,
  tenantId: string,
  response: AuthenticationResponseJSON,
  expect: AssertionExpectation,
): Promise<VerifiedPasskey> {
  const rp = relyingParty(ctx)
  const refuse = async (reason: string, row?: CredentialRow, details?: AuditEvent['details']) => {
    await recordAudit(ctx.db, {
      tenantId: expect.audit.chain ?? tenantId,
      actor: expect.audit.actor,
      action: expect.audit.action,
      target: expect.audit.target ?? (row ? { kind: 'passkey', id: row.id } : undefined),
      outcome: 'denied',
      reason,
      details: { ...(row ? { passkeyId: row.id } : {}), ...details },
    })
    return new Problem(expect.refusal)
  }
  const credentialId = typeof response.id === 'string' && response.id.length <= 1366 ? response.id : ''
  let lookup = ctx.db
    .selectFrom('passkey_credentials')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('credential_id', '=', credentialId)
    .where('owner_kind', '=', expect.owner.kind)
  if ('id' in expect.owner) lookup = lookup.where('owner_id', '=', expect.owner.id)
  const row = await lookup.executeTakeFirst()
  const challenge = expect.challenge
  let verified: Awaited<ReturnType<typeof verifyAuthenticationResponse>>
  try {
    verified = await verifyAuthenticationResponse({
      response,
      expectedChallenge:
        'value' in challenge
          ? challenge.value
          : (value) => consumePasskeyChallenge(ctx, tenantId, challenge.purpose, challenge.owner, value),
      expectedOrigin: rp.origins,
      expectedRPID: rp.id,
      expectedType: 'webauthn.get',
      requireUserVerification: true,
      // The counter is checked below, after the signature, so that only a validly signed regression counts as a
      // clone (the library would compare it before checking the signature).
      credential: { id: credentialId || 'unknown', publicKey: new Uint8Array(row?.public_key ?? decoy), counter: 0 },
    })
  } catch (error) {
    throw await refuse(row ? reasonOf(error) : 'unknown-credential', row)
  }
  if (!row) throw await refuse('unknown-credential')
  if (!verified.verified) throw await refuse('signature-invalid', row)
  const info = verified.authenticationInfo
  const owner = { kind: row.owner_kind, id: row.owner_id }
  // The user handle, when the authenticator sends one, names the account the credential was made for.
  const userHandle = response.response.userHandle
  if (userHandle && userHandle !== Buffer.from(userHandleOf(owner)).toString('base64url')) {
    throw await refuse('user-handle-mismatch', row)
  }
  const backupEligible = info.credentialDeviceType === 'multiDevice'
  // Backup eligibility is fixed when the credential is made; a change means another authenticator.
  if (backupEligible !== row.backup_eligible) throw await refuse('backup-eligibility-changed', row)
  const stored = Number(row.sign_count)
  const presented = info.newCounter
  const counts = stored > 0 || presented > 0
  let update = ctx.db
    .updateTable('passkey_credentials')
    .set({ sign_count: presented, backed_up: info.credentialBackedUp, last_used_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', row.id)
  // One conditional update: of two assertions with the same counter, only one moves it.
  if (counts) update = update.where('sign_count', '<', presented)
  const moved = (await update.executeTakeFirst()).numUpdatedRows > 0n
  if (!moved) {
    await recordAudit(ctx.db, {
      tenantId,
      actor: expect.audit.actor,
      action: 'passkey.clone-suspected',
      target: { kind: 'passkey', id: row.id },
      outcome: 'denied',
      reason: 'sign counter did not increase',
      details: { ownerKind: owner.kind, ownerId: owner.id, storedCounter: stored, presentedCounter: presented },
    })
    throw await refuse('counter-regression', row)
  }
  return {
    passkeyId: row.id,
    credentialId: row.credential_id,
    owner,
    userVerified: info.userVerified,
    backupEligible,
    backedUp: info.credentialBackedUp,
    createdAt: new Date(row.created_at),
  }
}

/** Deletes an owner's passkeys (one, by id, or all) in the caller's transaction; gives what it deleted. */
export async function deletePasskeys(
  db: ServerContext['db'],
  tenantId: string,
  owner: PasskeyOwner,
  passkeyId?: string,
): Promise<string[]> {
  let query = db
    .deleteFrom('passkey_credentials')
    .where('tenant_id', '=', tenantId)
    .where('owner_kind', '=', owner.kind)
    .where('owner_id', '=', owner.id)
  if (passkeyId) query = query.where('id', '=', passkeyId)
  return (await query.returning('id').execute()).map((row) => row.id)
}
