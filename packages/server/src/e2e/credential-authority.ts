import {
  CREDENTIAL_TYPE,
  credentialAuthorityService,
  type MemberIdentity,
  memberCredentialClaims,
  memberOfCredential,
} from '@strongroom/sdk/mls-node'
import { exportJWK, type JWK } from 'jose'
import type { Credential } from 'ts-mls'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { signJwt } from '../platform/keyring/jws.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { verificationKeys } from '../platform/keyring/signing-keys.ts'

/**
 * The credential authority (RFC 9420, section 5.3): it signs, for an authenticated device, staff member or the
 * archive, a credential binding that member to the MLS signature key it will use. Every member checks every other
 * member's credential against the authority's keys, so the delivery service cannot add a member of its own making
 * without this key, which stays with the key provider (wrapped by the key-encryption key, or inside the HSM).
 */
export async function issueMemberCredential(
  ctx: Pick<ServerContext, 'db'>,
  key: SigningKey,
  input: { tenantId: string; member: MemberIdentity; signaturePublicKey: Uint8Array },
): Promise<string> {
  const credential = signJwt(key, CREDENTIAL_TYPE, { ...memberCredentialClaims(input) })
  await recordAudit(ctx.db, {
    tenantId: input.tenantId,
    actor:
      input.member.kind === 'archive' ? { kind: 'system', id: null } : { kind: input.member.kind, id: input.member.id },
    action: 'e2e.credential.issue',
    target: { kind: input.member.kind, id: input.member.id },
    outcome: 'success',
    details: { authorityKeyId: key.id },
  })
  return credential
}

/** The authority's public keys, old ones included, as a JWK set members verify credentials with. */
export async function credentialAuthorityKeys(ctx: Pick<ServerContext, 'db'>): Promise<JWK[]> {
  const keys = await verificationKeys(ctx.db, 'mls-credential')
  return Promise.all(
    [...keys].map(async ([kid, publicKey]) => ({ ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' })),
  )
}

/**
 * The member a credential names, if the authority signed it for this tenant and this signature key; otherwise
 * undefined. The same check every client runs.
 */
export async function verifiedMember(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  credential: Credential,
  signaturePublicKey: Uint8Array,
): Promise<MemberIdentity | undefined> {
  const service = credentialAuthorityService(await credentialAuthorityKeys(ctx), tenantId)
  if (!(await service.validateCredential(credential, signaturePublicKey))) return undefined
  return memberOfCredential(credential)
}
