import { StaffToken } from './credentials.ts'
import { type PublicRequestOptions, postWithoutCredentials } from './public-request.ts'

/**
 * The JSON forms of WebAuthn that cross the wire (WebAuthn Level 3 `toJSON()` / `parse…OptionsFromJSON()`). The
 * browser side is the platform's: pass the options to `PublicKeyCredential.parseCreationOptionsFromJSON` (or
 * `parseRequestOptionsFromJSON`), call `navigator.credentials.create`/`.get`, and send back `credential.toJSON()`.
 */
export interface PasskeyCreationOptions {
  challenge: string
  rp: { id?: string; name: string }
  user: { id: string; name: string; displayName: string }
  [key: string]: unknown
}

export interface PasskeyRequestOptions {
  challenge: string
  rpId?: string
  allowCredentials?: { id: string; type: 'public-key'; transports?: string[] }[]
  userVerification?: string
  timeout?: number
  [key: string]: unknown
}

export interface PasskeyRegistrationCredential {
  id: string
  rawId: string
  type: 'public-key'
  response: { clientDataJSON: string; attestationObject: string; transports?: string[]; [key: string]: unknown }
  authenticatorAttachment?: 'platform' | 'cross-platform'
  clientExtensionResults: Record<string, unknown>
}

export interface PasskeyAssertion {
  id: string
  rawId: string
  type: 'public-key'
  response: { clientDataJSON: string; authenticatorData: string; signature: string; userHandle?: string }
  authenticatorAttachment?: 'platform' | 'cross-platform'
  clientExtensionResults: Record<string, unknown>
}

export interface Passkey {
  id: string
  credentialId: string
  backupEligible: boolean
  backedUp: boolean
  transports: string[]
  createdAt: string
  lastUsedAt: string | null
}

export interface StaffSignIn {
  staffId: string
  token: string
  tokenId: string
  scopes: string[]
  expiresAt: string
}

interface SignInOptions extends PublicRequestOptions {
  tenantId: string
}

/** Staff sign-in, step one (no token needed): the options for `navigator.credentials.get`. */
export function staffPasskeySignInOptions(options: SignInOptions): Promise<PasskeyRequestOptions> {
  return postWithoutCredentials(options, '/v1/staff/passkey/sign-in/options', { tenantId: options.tenantId })
}

/**
 * Staff sign-in, step two: the assertion for a staff API token, with the credentials to use it.
 *
 * @example
 * const options = await staffPasskeySignInOptions({ baseUrl, tenantId })
 * const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) })
 * const { credentials } = await signInStaffWithPasskey({ baseUrl, tenantId, assertion: credential.toJSON() })
 */
export async function signInStaffWithPasskey(
  options: SignInOptions & { assertion: PasskeyAssertion; ttlSeconds?: number; scopes?: string[] },
): Promise<StaffSignIn & { credentials: StaffToken }> {
  const signedIn = await postWithoutCredentials<StaffSignIn>(options, '/v1/staff/passkey/sign-in', {
    tenantId: options.tenantId,
    assertion: options.assertion,
    ...(options.ttlSeconds ? { ttlSeconds: options.ttlSeconds } : {}),
    ...(options.scopes ? { scopes: options.scopes } : {}),
  })
  return { ...signedIn, credentials: new StaffToken(signedIn.token) }
}

interface InvitationOptions extends SignInOptions {
  /** The secret of the invitation link (`#invite=sri_…` in the console link `strongroom staff invite` printed). */
  invitation: string
}

/** Enrolling a staff passkey from an invitation link, step one (no token needed): options for `navigator.credentials.create`. */
export function staffInvitationPasskeyOptions(options: InvitationOptions): Promise<PasskeyCreationOptions> {
  return postWithoutCredentials(options, '/v1/staff/invitation/passkey/options', {
    tenantId: options.tenantId,
    invitation: options.invitation,
  })
}

/**
 * Enrolling a staff passkey from an invitation link, step two: the new credential, which uses the link up. The staff
 * member then signs in with it (`staffPasskeySignInOptions`, `signInStaffWithPasskey`).
 *
 * @example
 * const options = await staffInvitationPasskeyOptions({ baseUrl, tenantId, invitation })
 * const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
 * await enrolStaffPasskey({ baseUrl, tenantId, invitation, credential: credential.toJSON() })
 */
export function enrolStaffPasskey(
  options: InvitationOptions & { credential: PasskeyRegistrationCredential },
): Promise<{ staffId: string; passkey: Passkey }> {
  return postWithoutCredentials(options, '/v1/staff/invitation/passkey', {
    tenantId: options.tenantId,
    invitation: options.invitation,
    credential: options.credential,
  })
}
