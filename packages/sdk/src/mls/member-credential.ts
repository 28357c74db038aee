import { base64url, createLocalJWKSet, decodeJwt, type JWK, type JWTPayload, jwtVerify, SignJWT } from 'jose'
import type { AuthenticationService, Credential } from 'ts-mls'

/** Who a group member is: a customer's device, a member of the bank's staff, or the bank's compliance archive. */
export interface MemberIdentity {
  kind: 'device' | 'staff' | 'archive'
  id: string
  /** The customer a device belongs to. */
  customerId?: string
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

/** `kind:id` of the member a credential names, or undefined when it is no Strongroom credential (nobody, then). */
export function memberKeyOf(credential: Credential): string | undefined {
  try {
    const member = memberOfCredential(credential)
    return `${member.kind}:${member.id}`
  } catch {
    return undefined
  }
}

function memberOfClaims(claims: MemberCredentialClaims): MemberIdentity {
  const [kind, id] = claims.sub.split(':', 2) as [MemberIdentity['kind'], string]
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
