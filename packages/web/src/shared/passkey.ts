import type { PasskeyAssertion, PasskeyRequestOptions } from '@strongroom/sdk'

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
