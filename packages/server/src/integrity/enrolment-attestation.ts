import { randomBytes } from 'node:crypto'
import type { EnrolmentEvidence } from '@strongroom/sdk/protocol'
import { recordAudit } from '../audit/events.ts'
import type { EnrolmentAttestation } from '../identity/devices.ts'
import type { VerifiedProof } from '../identity/dpop.ts'
import { pendingEnrolment } from '../identity/enrolment-codes.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { secretHash } from '../platform/ids.ts'
import {
  type HardwareVerifiers,
  refuseEvidence,
  storeAttestation,
  verifyForRegisteredApp,
} from './hardware-attestation.ts'
import { loadIntegrityPolicy } from './policy.ts'

/*
 * Hardware evidence with an enrolment. Android's Keystore attests a key once, when it generates it, with the challenge
 * the app gives then: the enrolment code obtains a challenge, the app generates its device key with it and enrols
 * that key with its chain. App Attest's key is not the device key, so its attestation covers the device key's
 * thumbprint beside the challenge. A tenant whose policy says `attestEnrolment` refuses an enrolment without either.
 */

const CHALLENGE_TTL_SECONDS = 300

/** A single-use challenge for the evidence an app is about to make and enrol with this enrolment code. */
export async function issueEnrolmentChallenge(ctx: Pick<ServerContext, 'db'>, enrolmentCode: string) {
  const pending = await pendingEnrolment(ctx, enrolmentCode)
  if (!pending) throw new Problem('identity/invalid-enrolment-code')
  const challenge = randomBytes(32).toString('base64url')
  const expiresAt = new Date(Date.now() + CHALLENGE_TTL_SECONDS * 1000)
  await ctx.db
    .insertInto('enrolment_challenges')
    .values({
      challenge_hash: secretHash(challenge),
      tenant_id: pending.tenantId,
      device_id: pending.deviceId,
      expires_at: expiresAt,
      used_at: null,
    })
    .execute()
  return { challenge, expiresAt: expiresAt.toISOString() }
}

type Enrolling = { tenantId: string; deviceId: string }

/**
 * The evidence verified for the registered app, binding the key being enrolled (`proof.jkt`): Android's attested key
 * must be it; App Attest's attestation must cover its thumbprint.
 */
async function verifyEnrolmentEvidence(
  ctx: Pick<ServerContext, 'db'>,
  verifiers: HardwareVerifiers,
  device: Enrolling,
  evidence: EnrolmentEvidence,
  proof: VerifiedProof,
) {
  if (evidence.format === 'apple-appattest') {
    const { attestationObject, keyId } = evidence
    const appAttest = { format: evidence.format, attestationObject, keyId }
    return verifyForRegisteredApp(
      ctx,
      verifiers,
      device,
      { ...evidence, evidence: appAttest },
      {
        keyThumbprint: proof.jkt,
      },
    )
  }
  const androidKey = { format: evidence.format, certificateChain: evidence.certificateChain }
  const result = await verifyForRegisteredApp(ctx, verifiers, device, { ...evidence, evidence: androidKey })
  // The attested key must be the key that signs this request, or the attestation proves nothing about it.
  if (result.keyId !== proof.jkt) return refuseEvidence(ctx, device, evidence.format, 'key-id-mismatch', evidence)
  return result
}

/** The tenant requires attestation at enrolment: the refusal, audited against the device the code reserved. */
async function refuseUnattested(ctx: Pick<ServerContext, 'db'>, device: Enrolling): Promise<never> {
  await recordAudit(ctx.db, {
    tenantId: device.tenantId,
    actor: { kind: 'device', id: device.deviceId },
    action: 'device.enrol',
    target: { kind: 'device', id: device.deviceId },
    outcome: 'denied',
    reason: 'attestation-required',
  })
  throw new Problem('integrity/attestation-required')
}

/**
 * The check enrolment runs (identity's `EnrolmentAttestation`). Without evidence, a tenant whose policy says
 * `attestEnrolment` refuses (audited), and the enrolment's transaction checks the policy again, for a code the
 * lookup could not place. With evidence, the challenge must be one an enrolment code obtained and not used, and the
 * evidence must verify for the registered app and bind the DPoP key being enrolled; inside the enrolment's
 * transaction the challenge is used up, and must have been obtained with the same code; the attestation is kept as
 * the device's, with the version it was attested for.
 */
export function enrolmentAttestation(
  ctx: Pick<ServerContext, 'db' | 'config'>,
  verifiers: HardwareVerifiers,
): EnrolmentAttestation {
  return async (proof, { enrolmentCode, evidence }) => {
    if (evidence === undefined) {
      const pending = await pendingEnrolment(ctx, enrolmentCode)
      if (pending && (await loadIntegrityPolicy(ctx, pending.tenantId)).attestEnrolment) {
        await refuseUnattested(ctx, pending)
      }
      return async (trx, enrolled) => {
        const policy = await loadIntegrityPolicy({ db: trx, config: ctx.config }, enrolled.tenantId)
        if (policy.attestEnrolment) throw new Problem('integrity/attestation-required')
      }
    }
    const hash = secretHash(evidence.challenge)
    const issued = await ctx.db
      .selectFrom('enrolment_challenges')
      .select(['tenant_id', 'device_id'])
      .where('challenge_hash', '=', hash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', new Date())
      .executeTakeFirst()
    if (!issued) throw new Problem('integrity/invalid-evidence', 'the challenge is unknown, used or expired')
    const device = { tenantId: issued.tenant_id, deviceId: issued.device_id }
    const result = await verifyEnrolmentEvidence(ctx, verifiers, device, evidence, proof)
    return async (trx, enrolled) => {
      const used = await trx
        .updateTable('enrolment_challenges')
        .set({ used_at: new Date() })
        .where('challenge_hash', '=', hash)
        .where('tenant_id', '=', enrolled.tenantId)
        .where('device_id', '=', enrolled.deviceId)
        .where('used_at', 'is', null)
        .executeTakeFirst()
      if ((used.numUpdatedRows ?? 0n) === 0n) {
        throw new Problem('integrity/invalid-evidence', 'the challenge is used or was issued for another enrolment')
      }
      await storeAttestation(trx, enrolled, evidence, result)
    }
  }
}
