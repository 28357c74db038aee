import type {
  PasskeyAssertion,
  PasskeyCreationOptions,
  PasskeyRegistrationCredential,
  PasskeyRequestOptions,
} from '@strongroom/sdk'

/**
 * Asks the platform for a passkey assertion (`navigator.credentials.get`) with options in WebAuthn's JSON form, as the
 * server sends them, and returns the credential in the JSON form the server takes back. The browser shows its own
 * prompt; a cancelled prompt rejects with a DOMException (NotAllowedError).
 */
export async function getPasskeyAssertion(options: PasskeyRequestOptions): Promise<PasskeyAssertion> {
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(
    options as unknown as PublicKeyCredentialRequestOptionsJSON,
  )
  const credential = (await navigator.credentials.get({ publicKey })) as PublicKeyCredential | null
  if (!credential) throw new DOMException('no passkey was chosen', 'NotAllowedError')
  return credential.toJSON() as PasskeyAssertion
}

/**
 * Asks the platform to make a passkey (`navigator.credentials.create`) with registration options in WebAuthn's JSON
 * form, and returns the new credential in the JSON form the server takes back. A cancelled prompt rejects with a
 * DOMException (NotAllowedError); a passkey this device already holds for the user, with InvalidStateError.
 */
export async function createPasskey(options: PasskeyCreationOptions): Promise<PasskeyRegistrationCredential> {
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(
    options as unknown as PublicKeyCredentialCreationOptionsJSON,
  )
  const credential = (await navigator.credentials.create({ publicKey })) as PublicKeyCredential | null
  if (!credential) throw new DOMException('no passkey was made', 'NotAllowedError')
  return credential.toJSON() as PasskeyRegistrationCredential
}
