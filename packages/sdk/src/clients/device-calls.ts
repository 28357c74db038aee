import { type ConsentRequest, signConsent } from '../consent.ts'
import type { ConsentApproval, ConsentDecline, ConsentListQuery } from '../consent-protocol.ts'
import { DeviceKey } from '../credentials.ts'
import type { DeviceKeys } from '../device-keys.ts'
import type { CustomerFactor, FactorProof } from '../factors.ts'
import type { Device } from '../identity-protocol.ts'
import {
  type AppIdentity,
  type AttestationProvider,
  type AttestedKeyGenerator,
  attestationClientData,
  devAttestation,
  type RiskSignals,
} from '../integrity.ts'
import type { AttestationGrant, Rekeyed } from '../integrity-protocol.ts'
import type { Passkey, PasskeyAssertion, PasskeyRegistrationCredential } from '../passkeys.ts'
import type { ProblemDocument } from '../protocol.ts'
import { openRuntimeSecret, type SecretsKeys } from '../secrets.ts'
import type { ClientClass } from './client-core.ts'
import { passkeyRegistrationOptionsAt, registerPasskeyAt } from './passkey-registration.ts'

/** How a device proves the app and itself (see `attest`). */
export interface Attestation {
  app: AppIdentity
  signals: RiskSignals
  provider?: AttestationProvider
  /**
   * App Attest: signs a request's client data (its DPoP proof) with `generateAssertion`, for banks whose policy asks
   * for an assertion on every request. Needed only then.
   */
  assertRequest?: (clientData: string) => Promise<string>
}

function deviceKeyOf(credentials: unknown, action: string): DeviceKey {
  if (!(credentials instanceof DeviceKey)) throw new TypeError(`only an enrolled device can ${action}`)
  return credentials
}

/** What only a customer's device calls (the access table's `device` and `attested-device` rules). */
export function withDeviceCalls<Base extends ClientClass>(base: Base) {
  return class DeviceCalls extends base {
    /**
     * The server said this device is revoked (`identity/device-wiped`): with `remoteWipe` configured and a command that
     * verifies against the pinned keys, erases the stores and confirms. Returns whether the device wiped.
     */
    obeyWipeCommand(problem: ProblemDocument): Promise<boolean> {
      return this.transport.obeyWipeCommand(problem)
    }

    /** After the stream was closed as revoked without a command: asks for one, and obeys it if it verifies. */
    checkRevocation(): Promise<boolean> {
      return this.transport.checkRevocation()
    }

    /** The integrity token this client sends with every request, once it has attested. */
    get integrityToken(): string | undefined {
      return this.transport.integrityToken
    }

    /**
     * Proves the app and device and keeps the integrity token the server's policy grants, renewing it by attesting
     * again when it expires. The provider turns the attestation's client data (the server's challenge and the app's
     * identity) into evidence: App Attest (an attestation, then assertions on renewal) or Android Key Attestation from
     * the native layer; the dev provider by default, which only a dev server accepts.
     *
     * @example
     * await client.attest({ app, signals, provider: async () => ({ format: 'android-key' }) })
     */
    async attest(attestation: Attestation): Promise<Pick<AttestationGrant, 'expiresIn' | 'scope'>> {
      const keys = deviceKeyOf(this.credentials, 'attest').keys
      const { challenge } = await this.call('POST /v1/integrity/challenges')
      const evidence = attestation.provider
        ? {
            ...(await attestation.provider(attestationClientData(challenge, attestation.app), challenge)),
            challenge,
            ...attestation.app,
            signals: attestation.signals,
          }
        : await devAttestation(keys, challenge, attestation.app, attestation.signals)
      const granted = await this.call('POST /v1/integrity/attest', { body: evidence })
      if (granted.assertRequests && !attestation.assertRequest) {
        throw new TypeError('the bank asks for an assertion on every request: pass assertRequest to attest')
      }
      this.transport.holdIntegrity({
        token: granted.integrityToken,
        renew: () => this.attest(attestation),
        assertRequest: granted.assertRequests ? attestation.assertRequest : undefined,
      })
      return { expiresIn: granted.expiresIn, scope: granted.scope }
    }

    /**
     * An enrolled Android device: makes a newly generated, attested Keystore key the device key (after an app update,
     * so that the new versionCode is what the server knows). Fetches a device challenge, has the native layer generate
     * the key with its client data as the attestation challenge, sends the chain in a request the current key signs,
     * and from then on acts with the new key (the old key's tokens have ended, and so has the integrity token: attest
     * again). Store the new keys where the old ones were.
     *
     * @example
     * const { keys, versionCode } = await client.rekey({ app, generateAttestedKey: nativeKeystore.generateAttestedKey })
     */
    async rekey(options: { app: AppIdentity; generateAttestedKey: AttestedKeyGenerator }): Promise<{
      keys: DeviceKeys
      keyThumbprint: Rekeyed['keyThumbprint']
      versionCode: Rekeyed['versionCode']
    }> {
      deviceKeyOf(this.credentials, 're-key')
      const { challenge } = await this.call('POST /v1/integrity/challenges')
      const clientData = attestationClientData(challenge, options.app)
      const { keys, certificateChain } = await options.generateAttestedKey(clientData, challenge)
      const answer = await this.call('POST /v1/integrity/rekey', {
        body: { challenge, ...options.app, certificateChain },
      })
      this.transport.replaceCredentials(
        new DeviceKey(keys, {
          accessToken: answer.token.accessToken,
          expiresIn: answer.token.expiresIn,
          fetch: this.transport.fetch,
          timeoutMs: this.transport.timeoutMs,
        }),
      )
      return { keys, keyThumbprint: answer.keyThumbprint, versionCode: answer.versionCode }
    }

    /** Registers the device's key for receiving runtime secrets (see `generateSecretsKeys`). */
    registerSecretsKey(keys: SecretsKeys) {
      return this.call('POST /v1/integrity/secrets-key', { body: { publicJwk: keys.publicJwk } })
    }

    /**
     * Fetches a runtime secret (an API key the app needs) and opens it: the server seals it to the device's secrets
     * key and delivers it only with a full-scope integrity token, so attest first.
     *
     * @example
     * const apiKey = new TextDecoder().decode(await client.fetchSecret('maps-api-key', secretsKeys))
     */
    async fetchSecret(name: string, keys: SecretsKeys): Promise<Uint8Array> {
      const sealed = await this.call('GET /v1/secrets/:name', { params: { name } })
      return openRuntimeSecret(keys, sealed)
    }

    /** Its customer's devices, to find and revoke a lost one. */
    async listMyDevices(): Promise<Device[]> {
      return (await this.call('GET /v1/devices')).devices
    }

    /** Its customer's pending consent requests (oldest first), optionally only one conversation's. */
    async listPendingConsents(options: Pick<ConsentListQuery, 'conversationId'> = {}): Promise<ConsentRequest[]> {
      return (await this.call('GET /v1/consents', { query: options })).consents
    }

    /**
     * Approves a payment by signing exactly what was asked with the device key. Show the customer
     * `formatAmount(consent.amount)` and the payee before calling this. When the bank's step-up policy asks for more
     * (`auth/step-up-required`), ask the customer for their authenticator code and pass it as `totpCode`.
     */
    async approveConsent(
      consent: ConsentRequest,
      options: Omit<ConsentApproval, 'signature'> = {},
    ): Promise<ConsentRequest> {
      const signature = await signConsent(deviceKeyOf(this.credentials, 'approve a consent').keys, consent)
      return this.call('POST /v1/consents/:consentId/approve', {
        params: { consentId: consent.id },
        body: {
          signature,
          ...(options.totpCode ? { totpCode: options.totpCode } : {}),
          ...(options.smsCode ? { smsCode: options.smsCode } : {}),
        },
      })
    }

    /**
     * Approves a payment with a passkey. Get the assertion with `navigator.credentials.get` and
     * `challenge: consentPasskeyChallenge(consent)` (decoded), `userVerification: 'required'`, after showing the
     * customer exactly what they approve; a passkey with user verification satisfies the policy's code step-up too.
     */
    approveConsentWithPasskey(consentId: string, assertion: PasskeyAssertion) {
      return this.call('POST /v1/consents/:consentId/approve/passkey', { params: { consentId }, body: { assertion } })
    }

    /**
     * Declines a payment. With a string, the customer's reason. With `fraud`, the customer says the payment is not
     * theirs ("This wasn't me"): the bank's backends hear of it by webhook (`consent.fraud_reported`), and with
     * `blockPayee` further requests to this payee for this customer are refused.
     *
     * @example
     * await client.declineConsent(consent.id, { fraud: true, blockPayee: true })
     */
    declineConsent(consentId: string, reason?: string | ConsentDecline) {
      return this.call('POST /v1/consents/:consentId/decline', {
        params: { consentId },
        body: reason === undefined ? {} : typeof reason === 'string' ? { reason } : reason,
      })
    }

    /** The options for `navigator.credentials.create`, to register a passkey of the device's customer. */
    passkeyRegistrationOptions() {
      return passkeyRegistrationOptionsAt(this, '/v1/passkeys')
    }

    /**
     * Sends `credential.toJSON()` from `navigator.credentials.create`; the server keeps the public key. A customer who
     * already holds a factor proves it (`stepUp`): a passkey, or the authenticator app when they have no passkey.
     */
    registerPasskey(credential: PasskeyRegistrationCredential, stepUp?: FactorProof) {
      return registerPasskeyAt(this, '/v1/passkeys', credential, stepUp)
    }

    /** Its customer's authenticator apps and passkeys, with their cooling-off. */
    async listFactors(): Promise<CustomerFactor[]> {
      return (await this.call('GET /v1/factors')).factors
    }

    /** Starts enrolling an authenticator app; the answer's URI (or QR code) goes into the app. */
    enrolTotp() {
      return this.call('POST /v1/factors/totp')
    }

    /**
     * Activates the enrolled authenticator app with its first code. Replacing an active one needs `stepUp` (a code of
     * the old app, or a passkey).
     */
    confirmTotp(code: string, stepUp?: FactorProof): Promise<void> {
      return this.call('POST /v1/factors/totp/confirm', { body: { code, ...(stepUp ? { stepUp } : {}) } })
    }

    /** Removes one of its customer's factors, proven by a factor at least as strong (the same one will do). */
    removeFactor(factorId: string, stepUp: FactorProof): Promise<void> {
      return this.call('POST /v1/factors/:factorId/remove', { params: { factorId }, body: { stepUp } })
    }

    /** Its customer's passkeys. */
    async listPasskeys(): Promise<Passkey[]> {
      return (await this.call('GET /v1/passkeys')).passkeys
    }

    /** The options for `navigator.credentials.get` to check its customer's passkey (a step-up). */
    passkeyAuthenticationOptions() {
      return this.call('POST /v1/passkeys/authentication/options')
    }

    /** Sends the assertion; resolves when the server verified it, with the user verified. */
    verifyPasskey(assertion: PasskeyAssertion) {
      return this.call('POST /v1/passkeys/authentication', { body: { assertion } })
    }

    /** Texts its customer a one-time code (to pass as `smsCode` when the step-up policy asks for one). */
    sendSmsCode() {
      return this.call('POST /v1/factors/sms/send', { body: {} })
    }

    /**
     * Redeems a pivot link for its customer. The conversation continues in the secure channel, with its public history
     * imported; a link sent to another customer is refused (`/pivot/wrong-customer`), so that a browser holding
     * another customer's device steps up instead (see `enrolWithPivotLink`).
     */
    redeemPivotLink(token: string) {
      return this.call('POST /v1/pivot/redeem', { body: { token } })
    }

    /**
     * Reports a suspicious message the customer received, such as a text claiming to be the bank. It is queued for the
     * bank's staff with the analysis of its links.
     *
     * @example
     * await client.reportSuspiciousMessage('Your account is locked: verify at examp1e-bank.com')
     */
    reportSuspiciousMessage(text: string): Promise<{ id: string }> {
      return this.call('POST /v1/suspicious-reports', { body: { text } })
    }
  }
}
