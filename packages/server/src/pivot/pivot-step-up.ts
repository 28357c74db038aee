import type { AuthenticationResponseJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server'
import { type Actor, recordAudit } from '../audit/events.ts'
import { listPasskeys, passkeyAuthenticationOptions, verifyPasskeyAssertion } from '../auth/passkeys.ts'
import type { SimSwapProvider } from '../auth/sim-swap.ts'
import { type SmsSender, sendSmsOtp, verifySmsOtp } from '../auth/sms-otp.ts'
import type { ChannelDeps } from '../channels/public-messages.ts'
import { smsChannelOf } from '../channels/sms.ts'
import { findCustomer } from '../identity/customers.ts'
import { type Device, enrolDeviceIn, type IssuedAccessToken } from '../identity/devices.ts'
import type { VerifiedProof } from '../identity/dpop.ts'
import { relyingPartyOf } from '../platform/config.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId, secretHash } from '../platform/ids.ts'
import { afterMove, consumeAndMove, type PivotMove, refusalFor } from './pivot.ts'

/**
 * The pivot's step-up: a browser or phone that is not an enrolled device of the link's customer proves, with the
 * link and a fresh factor of that customer (their passkey, or a code sent by SMS to their number on file after the
 * SIM-swap check), that the customer is holding it. Its DPoP key then becomes a new device of the customer and
 * redeems the link, in one transaction. The link stays single-use; a wrong factor changes nothing but the factor's
 * own attempt count (a used passkey challenge, a failed SMS code attempt).
 */

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'bus' | 'config' | 'log'>

/** The factors a link's customer can step up with; passkey options are for `navigator.credentials.get`. */
export interface PivotStepUpOptions {
  expiresAt: string
  passkey: PublicKeyCredentialRequestOptionsJSON | null
  sms: boolean
}

export type PivotFactorProof =
  | { kind: 'passkey'; assertion: AuthenticationResponseJSON }
  | { kind: 'sms-otp'; code: string }

interface UsableLink {
  id: string
  tenantId: string
  customerId: string
  expiresAt: Date
}

/** Whoever holds a link, before they are anyone: audited by the link they hold (its id, never its token). */
const linkHolder = (link: UsableLink): Actor => ({ kind: 'system', id: `pivot-link:${link.id}` })

/** The link a token names, if it can still be used; otherwise the problem that says why not. */
async function usableLink(ctx: Pick<ServerContext, 'db'>, token: string): Promise<UsableLink> {
  const tokenHash = secretHash(token)
  const row = await ctx.db
    .selectFrom('pivot_links')
    .select(['id', 'tenant_id', 'customer_id', 'expires_at'])
    .where('token_hash', '=', tokenHash)
    .where('completed_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', new Date())
    .executeTakeFirst()
  if (!row) throw await refusalFor(ctx, tokenHash, undefined, undefined)
  return { id: row.id, tenantId: row.tenant_id, customerId: row.customer_id, expiresAt: new Date(row.expires_at) }
}

/**
 * What the link's customer can step up with: their passkeys (with a fresh challenge of the `pivot` purpose, bound to
 * them), and an SMS code when they have a number on file and the bank an SMS channel (Twilio or SMPP). Says nothing else about them:
 * no name, no number.
 */
export async function pivotStepUpOptions(ctx: Ctx, token: string): Promise<PivotStepUpOptions> {
  const link = await usableLink(ctx, token)
  const owner = { kind: 'customer' as const, id: link.customerId }
  const hasPasskeys =
    relyingPartyOf(ctx.config) !== undefined && (await listPasskeys(ctx, link.tenantId, owner)).length > 0
  const customer = await findCustomer(ctx, link.tenantId, link.customerId)
  const sms = Boolean(customer?.phoneNumber) && (await smsChannelOf(ctx, link.tenantId)) !== undefined
  return {
    expiresAt: link.expiresAt.toISOString(),
    passkey: hasPasskeys ? await passkeyAuthenticationOptions(ctx, link.tenantId, 'pivot', owner) : null,
    sms,
  }
}

/** Sends the link's customer a one-time code by SMS (SIM-swap check first, fail closed; resends limited). */
export async function sendPivotSmsCode(
  ctx: Ctx,
  deps: { sendSms: SmsSender; simSwap: SimSwapProvider },
  token: string,
): Promise<{ expiresAt: string }> {
  const link = await usableLink(ctx, token)
  return sendSmsOtp(ctx, deps, { tenantId: link.tenantId, customerId: link.customerId, actor: linkHolder(link) })
}

/** Checks the factor for the link's customer; the factor's own check audits how it failed. */
async function verifyFactor(ctx: Ctx, link: UsableLink, factor: PivotFactorProof): Promise<void> {
  const owner = { kind: 'customer' as const, id: link.customerId }
  if (factor.kind === 'passkey') {
    await verifyPasskeyAssertion(ctx, link.tenantId, factor.assertion, {
      challenge: { purpose: 'pivot', owner },
      owner,
      audit: { action: 'passkey.authenticate', actor: linkHolder(link), target: { kind: 'pivot-link', id: link.id } },
      refusal: 'auth/passkey-invalid',
    })
    return
  }
  await verifySmsOtp(ctx, {
    tenantId: link.tenantId,
    customerId: link.customerId,
    code: factor.code,
    actor: linkHolder(link),
  })
}

/**
 * Enrols the key that signed the DPoP proof as a new device of the link's customer and redeems the link with it,
 * after a fresh factor of that customer. The link is checked before the factor (an unusable link burns no factor),
 * and consumed, the device created and the conversation moved in one transaction: of two attempts at once, one
 * succeeds and the other changes nothing.
 */
export async function enrolWithPivotLink(
  ctx: Ctx,
  deps: ChannelDeps,
  proof: VerifiedProof,
  input: { token: string; label: string; factor: PivotFactorProof },
): Promise<{
  device: Device
  tenantId: string
  token: IssuedAccessToken
  secureConversationId: string
  importedMessages: number
}> {
  // A token that names no usable link has no tenant to be audited in; it is refused before any factor is spent.
  const link = await usableLink(ctx, input.token)
  const via = input.factor.kind
  const refused = async (error: unknown) => {
    if (error instanceof Problem) {
      await recordAudit(ctx.db, {
        tenantId: link.tenantId,
        actor: linkHolder(link),
        action: 'channels.pivot.step-up',
        target: { kind: 'pivot-link', id: link.id },
        outcome: 'denied',
        reason: error.kind,
        details: { factor: via },
      })
    }
    return error
  }
  try {
    await verifyFactor(ctx, link, input.factor)
  } catch (error) {
    throw await refused(error)
  }
  const deviceId = newId('dev')
  const now = new Date()
  let enrolled: Awaited<ReturnType<typeof enrolDeviceIn>>
  let move: PivotMove
  try {
    ;[enrolled, move] = await ctx.db.transaction().execute(async (trx) => {
      // The key that steps up here is a browser's: the secure chat the link opened.
      const device = await enrolDeviceIn(ctx, trx, proof, {
        deviceId,
        kind: 'web',
        tenantId: link.tenantId,
        customerId: link.customerId,
        label: input.label,
        via: via === 'passkey' ? 'pivot-passkey' : 'pivot-sms-otp',
        now,
      })
      const moved = await consumeAndMove(
        ctx,
        trx,
        { tenantId: link.tenantId, customerId: link.customerId, deviceId },
        secretHash(input.token),
        via,
        now,
      )
      return [device, moved] as const
    })
  } catch (error) {
    throw await refused(error)
  }
  await afterMove(ctx, deps, link.tenantId, move)
  return {
    ...enrolled,
    secureConversationId: move.secureConversationId,
    importedMessages: move.imported,
  }
}
