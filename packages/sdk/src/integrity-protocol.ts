import { type Static, type StringOptions, type TProperties, Type } from '@sinclair/typebox'
import { Base64 } from './conversation-protocol.ts'
import { DeviceToken } from './identity-protocol.ts'
import { oneOf } from './schema-helpers.ts'

/** A single-use challenge an enrolled device attests (or re-keys) over. */
export const IntegrityChallenge = Type.Object({ challenge: Type.String(), expiresAt: Type.String() })

/** A single-use challenge for the evidence of the key an enrolment code enrols. */
export const EnrolmentChallenge = Type.Object({
  challenge: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
})

/** The integrity token an attestation earned, with the lifetime and scope the bank's policy gave it. */
export const AttestationGrant = Type.Object({
  integrityToken: Type.String(),
  expiresIn: Type.Integer(),
  scope: oneOf(['full', 'read-only'] as const),
  reason: Type.String(),
  assertRequests: Type.Boolean({
    description: 'every gated request must carry Strongroom-Assertion (App Attest, over its DPoP proof)',
  }),
})
export type AttestationGrant = Static<typeof AttestationGrant>

/** An Android device re-keyed: its new key's first token and thumbprint, and the versionCode its attestation names. */
export const Rekeyed = Type.Object({
  token: DeviceToken,
  keyThumbprint: Type.String(),
  versionCode: Type.Optional(Type.Integer()),
})
export type Rekeyed = Static<typeof Rekeyed>

/** A runtime secret as the server delivers it, sealed (HPKE) to the device's secrets key. */
export const SealedSecret = Type.Object({
  name: Type.String(),
  version: Type.Integer(),
  tenantId: Type.String(),
  deviceId: Type.String(),
  enc: Type.String(),
  ciphertext: Type.String(),
})
export type SealedSecret = Static<typeof SealedSecret>

/** The app as an attestation, an enrolment's evidence or a re-key names it: its id and its version. */
const AppIdentityFields = {
  appId: Type.String({ minLength: 1, maxLength: 200 }),
  appVersion: Type.String({ pattern: '^[0-9]+(\\.[0-9]+){0,2}$' }),
}

/** The evidence fields of either platform, over a challenge from POST /v1/integrity/enrolment-challenges. */
function enrolmentEvidence<T extends TProperties>(format: T, description: string) {
  return Type.Object(
    {
      ...format,
      challenge: Type.String({
        minLength: 16,
        maxLength: 128,
        description: 'from POST /v1/integrity/enrolment-challenges with this enrolment code',
      }),
      ...AppIdentityFields,
    },
    { additionalProperties: false, description },
  )
}

/** Hardware evidence of the key being enrolled (the DPoP key); a tenant may require it (`attestEnrolment`). */
export const EnrolmentEvidence = Type.Union([
  enrolmentEvidence(
    {
      format: Type.Literal('android-key'),
      certificateChain: Type.Array(Type.String({ minLength: 1, maxLength: 8192, pattern: '^[A-Za-z0-9+/=]+$' }), {
        minItems: 2,
        maxItems: 10,
        description: 'KeyStore.getCertificateChain of the enrolled key, leaf first',
      }),
    },
    'Android Key Attestation of the key being enrolled',
  ),
  enrolmentEvidence(
    {
      format: Type.Literal('apple-appattest'),
      attestationObject: Type.String({ minLength: 1, maxLength: 16384, pattern: '^[A-Za-z0-9+/=_-]+$' }),
      keyId: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9+/=_-]+$' }),
    },
    'App Attest attestation whose client data names the enrolled key (attestationClientData with its thumbprint)',
  ),
])
export type EnrolmentEvidence = Static<typeof EnrolmentEvidence>

/** What enrolling a device takes (`POST /v1/devices`): the customer's code, a label, and evidence when it attests. */
export const DeviceEnrolment = Type.Object(
  {
    enrolmentCode: Type.String({ minLength: 16, maxLength: 32 }),
    label: Type.String({ minLength: 1, maxLength: 100 }),
    attestation: Type.Optional(EnrolmentEvidence),
  },
  { additionalProperties: false },
)
export type DeviceEnrolment = Static<typeof DeviceEnrolment>

/** The fields every attestation carries, and those of its format. */
function evidence<T extends TProperties>(format: T) {
  return Type.Object(
    {
      ...format,
      challenge: Type.String({ minLength: 16, maxLength: 128 }),
      ...AppIdentityFields,
      signals: Type.Object(
        { rooted: Type.Boolean(), debugger: Type.Boolean(), hooking: Type.Boolean(), emulator: Type.Boolean() },
        { additionalProperties: false },
      ),
    },
    { additionalProperties: false },
  )
}

/** An Android app's own versionCode, which must be the one the platform attested. */
const ClaimedVersionCode = Type.Optional(
  Type.Integer({
    minimum: 1,
    maximum: 2_100_000_000,
    description: 'the versionCode the app runs as; refused (app-version-mismatch) unless it is the attested one',
  }),
)

/** What a device attests with (`POST /v1/integrity/attest`): its platform's evidence over a challenge, with signals. */
export const AttestationEvidence = Type.Union([
  evidence({ format: Type.Literal('dev'), proof: Type.String({ minLength: 1, maxLength: 4096 }) }),
  evidence({
    format: Type.Literal('apple-appattest'),
    attestationObject: Type.String({ minLength: 1, maxLength: 16384, pattern: '^[A-Za-z0-9+/=_-]+$' }),
    keyId: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9+/=_-]+$' }),
  }),
  evidence({
    format: Type.Literal('apple-appattest-assertion'),
    assertion: Type.String({ minLength: 1, maxLength: 4096, pattern: '^[A-Za-z0-9+/=_-]+$' }),
  }),
  evidence({ format: Type.Literal('android-key'), versionCode: ClaimedVersionCode }),
  evidence({
    format: Type.Literal('play-integrity'),
    token: Type.String({ minLength: 1, maxLength: 16384, pattern: '^[A-Za-z0-9_.-]+$' }),
    versionCode: ClaimedVersionCode,
  }),
])
export type AttestationEvidence = Static<typeof AttestationEvidence>

/** What asking for an enrolment challenge takes (`POST /v1/integrity/enrolment-challenges`). */
export const EnrolmentChallengeRequest = Type.Object(
  { enrolmentCode: Type.String({ minLength: 16, maxLength: 32 }) },
  { additionalProperties: false },
)
export type EnrolmentChallengeRequest = Static<typeof EnrolmentChallengeRequest>

const CertificateChain = Type.Array(Type.String({ minLength: 1, maxLength: 8192, pattern: '^[A-Za-z0-9+/=]+$' }), {
  minItems: 2,
  maxItems: 10,
  description: 'KeyStore.getCertificateChain of the new key, base64 DER, leaf first',
})

/** What re-keying an Android device takes (`POST /v1/integrity/rekey`): the new key's attested chain. */
export const RekeyRequest = Type.Object(
  {
    challenge: Type.String({
      minLength: 16,
      maxLength: 128,
      description: 'from POST /v1/integrity/challenges',
    }),
    ...AppIdentityFields,
    certificateChain: CertificateChain,
  },
  { additionalProperties: false },
)
export type RekeyRequest = Static<typeof RekeyRequest>

/** The device's P-256 key agreement key, to which runtime secrets are sealed (`POST /v1/integrity/secrets-key`). */
export const SecretsKeyRegistration = Type.Object(
  {
    publicJwk: Type.Object(
      {
        kty: Type.Literal('EC'),
        crv: Type.Literal('P-256'),
        x: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }),
        y: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)
export type SecretsKeyRegistration = Static<typeof SecretsKeyRegistration>

// ── Administration: the tenant's integrity policy, runtime secrets, the apps Apple and Google attest ──

const Treatment = oneOf(['allow', 'limited', 'deny'] as const)
const AppVersion = Type.String({ pattern: '^[0-9]+(\\.[0-9]+){0,2}$' })
const VersionCode = Type.Integer({ minimum: 1, maximum: 2_100_000_000 })

/**
 * A bank's integrity policy: what each risk signal leads to (a full token, a short read-only one, or none), the lowest
 * app version allowed, the token lifetimes, and whether device routes need a token at all (unset: the deployment's
 * `STRONGROOM_INTEGRITY_REQUIRED`, on in production).
 */
export const IntegrityPolicy = Type.Object(
  {
    required: Type.Optional(Type.Boolean()),
    /**
     * Device routes that need a token even where `required` is off, as `METHOD /path` from the API (for example
     * `POST /v1/consents/:consentId/approve`): a bank can guard its riskiest actions first.
     */
    routes: Type.Optional(
      Type.Array(Type.String({ pattern: '^(GET|POST|PUT|DELETE) /[A-Za-z0-9/:._-]*$', maxLength: 200 }), {
        maxItems: 100,
        uniqueItems: true,
      }),
    ),
    /**
     * The lowest app version bound at attestation: the version an App Attest key's attestation covered (Apple attests
     * the app id, not its version) and the dev verifier's. Android is held to `minVersionCode` instead.
     */
    minAppVersion: Type.Optional(AppVersion),
    /** The lowest Android versionCode the platform attested (Key Attestation, Play Integrity); none unless set. */
    minVersionCode: Type.Optional(VersionCode),
    /**
     * Every app enrols with hardware evidence of its device key (Android Key Attestation of the enrolled key, or App
     * Attest bound to it); an enrolment without is refused (`integrity/attestation-required`) and audited.
     */
    attestEnrolment: Type.Optional(Type.Boolean()),
    /**
     * What a browser (a device of kind `web`, which cannot attest) may do where devices need a token: it always reads;
     * it chats (sends, and keeps its end-to-end group) unless `chat` is false; it never receives runtime secrets, and
     * approves payments only with a user-verified passkey up to the step-up policy's `webDeviceMaxAmount`.
     */
    webDevices: Type.Optional(Type.Object({ chat: Type.Boolean() }, { additionalProperties: false })),
    /**
     * Devices attested with App Attest sign every gated request with an assertion (`Strongroom-Assertion`, over the
     * request's DPoP proof) whose counter must grow: a replayed or rolled-back request is refused.
     */
    assertions: Type.Optional(Type.Boolean()),
    rooted: Treatment,
    emulator: Treatment,
    debugger: Treatment,
    hooking: Treatment,
    /** A Play Integrity verdict of an app not licensed to the Play account (`limited` unless set). */
    unlicensed: Type.Optional(Treatment),
    fullLifetimeSeconds: Type.Integer({ minimum: 30, maximum: 3600 }),
    limitedLifetimeSeconds: Type.Integer({ minimum: 10, maximum: 600 }),
  },
  { additionalProperties: false },
)
export type IntegrityPolicy = Static<typeof IntegrityPolicy>

/** Standard base64 within these bounds. */
const Base64Of = (options: StringOptions) => Type.String({ ...Base64, ...options })

/** A runtime secret's value to store (`PUT /v1/secrets/:name`), base64. */
export const RuntimeSecretValue = Type.Object(
  { value: Base64Of({ minLength: 1, maxLength: 5464 }) },
  { additionalProperties: false },
)
export type RuntimeSecretValue = Static<typeof RuntimeSecretValue>

/** A runtime secret stored: its name and its new version. */
export const RuntimeSecretVersion = Type.Object({ name: Type.String(), version: Type.Integer() })

/** The newest certificate pin set: a JWS (ES256) the app verifies with the pin-set key it carries. */
export const SignedPinSet = Type.String()

/** How Apple and Google know one of the bank's apps (`PUT /v1/apps/:appId`), for hardware attestation. */
export const AppRegistration = Type.Object(
  {
    apple: Type.Optional(
      Type.Object(
        {
          teamId: Type.String({ pattern: '^[A-Z0-9]{10}$' }),
          bundleId: Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9.-]+$' }),
        },
        { additionalProperties: false },
      ),
    ),
    android: Type.Optional(
      Type.Object(
        {
          packageName: Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._]+$' }),
          signingCertificateSha256: Type.Array(Type.String({ pattern: '^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$' }), {
            minItems: 1,
            maxItems: 10,
          }),
          playIntegrity: Type.Optional(
            Type.Object(
              {
                decryptionKey: Base64Of({ minLength: 44, maxLength: 44 }),
                verificationKey: Base64Of({ minLength: 1, maxLength: 400 }),
              },
              {
                additionalProperties: false,
                description: 'the Play Console’s response encryption keys (base64): AES-256 and EC P-256',
              },
            ),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
)
export type AppRegistration = Static<typeof AppRegistration>

/** Why an app version is switched off (`POST /v1/apps/:appId/versions/:appVersion/deactivate` and by versionCode). */
export const AppVersionDeactivation = Type.Optional(
  Type.Object({ reason: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
)
export type AppVersionDeactivation = Static<typeof AppVersionDeactivation>
