import type {
  InvitedPasskeyRegistration,
  Passkey,
  PasskeyAssertion,
  PasskeyCreationOptions,
  PasskeyRegistrationCredential,
  PasskeyRequestOptions,
  StaffInvitation,
  StaffPasskeySignIn,
  StaffSignIn,
  StaffSignInStart,
} from './auth-protocol.ts'
import { StaffToken } from './credentials.ts'
import { type PublicRequestOptions, postWithoutCredentials } from './public-request.ts'

// The JSON forms of WebAuthn that cross the wire (WebAuthn Level 3 `toJSON()` / `parse…OptionsFromJSON()`). The
// browser side is the platform's: pass the options to `PublicKeyCredential.parseCreationOptionsFromJSON` (or
// `parseRequestOptionsFromJSON`), call `navigator.credentials.create`/`.get`, and send back `credential.toJSON()`.
export type {
  Passkey,
  PasskeyAssertion,
  PasskeyCreationOptions,
  PasskeyRegistrationCredential,
  PasskeyRequestOptions,
  StaffSignIn,
}

type SignInOptions = PublicRequestOptions & StaffSignInStart

/** Staff sign-in, step one (no token needed): the options for `navigator.credentials.get`. */
export function staffPasskeySignInOptions(options: SignInOptions): Promise<PasskeyRequestOptions> {
  return postWithoutCredentials(options, 'POST /v1/staff/passkey/sign-in/options', { tenantId: options.tenantId })
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
  options: PublicRequestOptions & StaffPasskeySignIn,
): Promise<StaffSignIn & { credentials: StaffToken }> {
  const signedIn = await postWithoutCredentials(options, 'POST /v1/staff/passkey/sign-in', {
    tenantId: options.tenantId,
    assertion: options.assertion,
    ...(options.ttlSeconds ? { ttlSeconds: options.ttlSeconds } : {}),
    ...(options.scopes ? { scopes: options.scopes } : {}),
  })
  return { ...signedIn, credentials: new StaffToken(signedIn.token) }
}

/** `invitation`: the secret of the invitation link (`#invite=sri_…` in the console link `strongroom staff invite` printed). */
type InvitationOptions = PublicRequestOptions & StaffInvitation

/** Enrolling a staff passkey from an invitation link, step one (no token needed): options for `navigator.credentials.create`. */
export function staffInvitationPasskeyOptions(options: InvitationOptions): Promise<PasskeyCreationOptions> {
  return postWithoutCredentials(options, 'POST /v1/staff/invitation/passkey/options', {
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
  options: PublicRequestOptions & InvitedPasskeyRegistration,
): Promise<{ staffId: string; passkey: Passkey }> {
  return postWithoutCredentials(options, 'POST /v1/staff/invitation/passkey', {
    tenantId: options.tenantId,
    invitation: options.invitation,
    credential: options.credential,
  })
}
