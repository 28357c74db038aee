import { base64url, createLocalJWKSet, decodeJwt, type JWK, type JWTPayload, jwtVerify, SignJWT } from 'jose'
import type { AuthenticationService, Credential } from 'ts-mls'

/** Who a group member is: a customer's device, a member of the bank's staff, or the bank's compliance archive. */
export interface MemberIdentity {
  kind: 'device' | 'staff' | 'archive'
  id: string
  /** The customer a device belongs to. */
  customerId?: string
  /**
   * Which of a staff member's browsers or devices this leaf is (staff only): each holds a signature key of its own, and
   * the instance is named after it, so an agent's browsers are leaves of the same person side by side instead of
   * replacing each other. A customer's devices are told apart by their device id already.
   */
  instance?: string
}

/** Characters of the base64url signature key that name a staff member's instance (96 bits). */
const INSTANCE_LENGTH = 16

/**
 * The key that says which leaf a member is: `kind:id` for a device or the archive (one leaf each, whatever keys it
 * holds: a device that lost its state re-joins in place of its leaf), `staff:id/instance` for each of a staff member's
 * browsers.
 */
export function leafKeyOf(member: MemberIdentity): string {
  return member.instance === undefined
    ? `${member.kind}:${member.id}`
    : `${member.kind}:${member.id}/${member.instance}`
}

/** Whether a leaf's member is `ref`: the same person, and the same instance when `ref` names one. */
export function isMemberRef(member: MemberIdentity, ref: { kind: string; id: string; instance?: string }): boolean {
  return (
    member.kind === ref.kind && member.id === ref.id && (ref.instance === undefined || member.instance === ref.instance)
  )
}

/** The claims of a member credential, signed by the deployment's credential authority. */
export interface MemberCredentialClaims extends JWTPayload {
  /** The tenant (bank) the member belongs to. */
  tid: string
  /** `device:<id>`, `staff:<id>` or `archive:<id>`. */
  sub: string
  cst?: string
  /** The member's MLS signature public key, base64url: the credential is good only with this key. */
  mls_key: string
}

export const CREDENTIAL_ISSUER = 'strongroom:credential-authority'
export const CREDENTIAL_TYPE = 'strongroom-member+jwt'

/** What a member credential says: the claims the credential authority signs (typ CREDENTIAL_TYPE, alg EdDSA). */
export function memberCredentialClaims(input: {
  tenantId: string
  member: MemberIdentity
  signaturePublicKey: Uint8Array
}): MemberCredentialClaims {
  return {
    tid: input.tenantId,
    mls_key: base64url.encode(input.signaturePublicKey),
    ...(input.member.customerId ? { cst: input.member.customerId } : {}),
    iss: CREDENTIAL_ISSUER,
    sub: `${input.member.kind}:${input.member.id}`,
    iat: Math.floor(Date.now() / 1000),
  }
}

/**
 * Signs a member credential: the credential authority (the server) vouches that this MLS signature key belongs to
 * this device, staff member or archive of this tenant. `authorityKey` is an Ed25519 private key (the server's own
 * authority signs through its key provider instead, with the same claims).
 */
export function signMemberCredential(
  authorityKey: Parameters<SignJWT['sign']>[0],
  keyId: string,
  input: { tenantId: string; member: MemberIdentity; signaturePublicKey: Uint8Array },
): Promise<string> {
  return new SignJWT(memberCredentialClaims(input))
    .setProtectedHeader({ alg: 'EdDSA', typ: CREDENTIAL_TYPE, kid: keyId })
    .sign(authorityKey)
}

/** The MLS basic credential that carries a signed member credential (a compact JWS) as its identity. */
export function mlsCredential(signedCredential: string): Credential {
  return { credentialType: 'basic', identity: new TextEncoder().encode(signedCredential) }
}

/** The member a credential names. Only meaningful once the credential has been validated (the library does that). */
export function memberOfCredential(credential: Credential): MemberIdentity {
  if (credential.credentialType !== 'basic') throw new TypeError('not a Strongroom member credential')
  const claims = decodeJwt(new TextDecoder().decode(credential.identity)) as MemberCredentialClaims
  return memberOfClaims(claims)
}

/** The leaf key (`leafKeyOf`) of the member a credential names, or undefined when it is no Strongroom credential. */
export function memberKeyOf(credential: Credential): string | undefined {
  try {
    return leafKeyOf(memberOfCredential(credential))
  } catch {
    return undefined
  }
}

/** The member a credential's claims name; a staff member's instance comes from the signature key it is bound to. */
export function memberOfClaims(claims: MemberCredentialClaims): MemberIdentity {
  const [kind, id] = claims.sub.split(':', 2) as [MemberIdentity['kind'], string]
  if (kind === 'staff' && typeof claims.mls_key === 'string') {
    return { kind, id, instance: claims.mls_key.slice(0, INSTANCE_LENGTH) }
  }
  return claims.cst ? { kind, id, customerId: claims.cst } : { kind, id }
}

/**
 * The authentication service every member runs (RFC 9420, section 5.3.1): a credential is accepted only when the
 * credential authority signed it for this tenant and for exactly the signature key the member uses. ts-mls's default
 * accepts every credential, which would let the delivery service slip in a member of its own.
 */
export function credentialAuthorityService(authorityKeys: JWK[], tenantId: string): AuthenticationService {
  const keys = createLocalJWKSet({ keys: authorityKeys })
  return {
    async validateCredential(credential, signaturePublicKey) {
      if (credential.credentialType !== 'basic') return false
      try {
        const { payload } = await jwtVerify<MemberCredentialClaims>(
          new TextDecoder().decode(credential.identity),
          keys,
          {
            issuer: CREDENTIAL_ISSUER,
            typ: CREDENTIAL_TYPE,
            algorithms: ['EdDSA'],
          },
        )
        if (
          payload.tid !== tenantId ||
          typeof payload.sub !== 'string' ||
          !/^(device|staff|archive):/.test(payload.sub)
        ) {
          return false
        }
        return payload.mls_key === base64url.encode(signaturePublicKey)
      } catch {
        return false
      }
    },
  }
}
