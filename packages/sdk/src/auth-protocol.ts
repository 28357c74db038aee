import { type Static, type TProperties, Type } from '@sinclair/typebox'
import { E164_PATTERN, staffScopes } from './identity-protocol.ts'
import { idOf, oneOf } from './schema-helpers.ts'

/** A customer's authenticator app (TOTP) or passkey, as the customer's devices and the console list it. */
export const CustomerFactor = Type.Object({
  id: Type.String(),
  kind: oneOf(['totp', 'passkey'] as const),
  status: oneOf(['pending', 'active'] as const),
  createdAt: Type.String(),
  activatedAt: Type.Union([Type.String(), Type.Null()]),
  /** Until when the factor satisfies no high-value step-up (the bank's cooling-off period); null when it does. */
  coolingOffUntil: Type.Union([Type.String(), Type.Null()]),
})
export type CustomerFactor = Static<typeof CustomerFactor>
export const CustomerFactorList = Type.Object({ factors: Type.Array(CustomerFactor) })

/** An authenticator app being enrolled: the URI (or QR code) to put into the app, then confirm with its first code. */
export const TotpEnrolment = Type.Object({
  factorId: Type.String(),
  otpauthUri: Type.String(),
  qrCodeSvg: Type.String(),
})
export type TotpEnrolment = Static<typeof TotpEnrolment>

/** A customer's factors removed by staff (they lost them): how many. */
export const FactorsReset = Type.Object({ removed: Type.Integer() })

/** A one-time code texted to the customer's number on file, valid until then. */
export const SmsCodeSent = Type.Object({ expiresAt: Type.String() })

/** A registered passkey: a customer's (listed by their devices) or a staff member's own. */
export const Passkey = Type.Object({
  id: Type.String(),
  credentialId: Type.String(),
  backupEligible: Type.Boolean(),
  backedUp: Type.Boolean(),
  transports: Type.Array(Type.String()),
  createdAt: Type.String(),
  lastUsedAt: Type.Union([Type.String(), Type.Null()]),
})
export type Passkey = Static<typeof Passkey>
export const PasskeyList = Type.Object({ passkeys: Type.Array(Passkey) })

/**
 * WebAuthn options as JSON (WebAuthn Level 3): pass them to `PublicKeyCredential.parseCreationOptionsFromJSON` (or
 * `parseRequestOptionsFromJSON`) and `navigator.credentials.create` (or `.get`) as `publicKey`. Only the challenge is
 * named: the rest is the WebAuthn dictionary as the server's library writes it.
 */
const webAuthnOptions = <T extends TProperties>(fields: T) =>
  Type.Object(
    { challenge: Type.String(), ...fields },
    {
      additionalProperties: true,
      description: 'WebAuthn options (JSON): pass to navigator.credentials.create or .get as `publicKey`',
    },
  )

/** The options for `navigator.credentials.create`, to register a passkey. */
export const PasskeyCreationOptions = webAuthnOptions({
  rp: Type.Object({ id: Type.Optional(Type.String()), name: Type.String() }, { additionalProperties: true }),
  user: Type.Object(
    { id: Type.String(), name: Type.String(), displayName: Type.String() },
    { additionalProperties: true },
  ),
  authenticatorSelection: Type.Optional(
    Type.Object(
      { residentKey: Type.Optional(Type.String()), userVerification: Type.Optional(Type.String()) },
      { additionalProperties: true },
    ),
  ),
  attestation: Type.Optional(Type.String()),
})
export type PasskeyCreationOptions = Static<typeof PasskeyCreationOptions>

/** The options for `navigator.credentials.get`, to check a passkey (a step-up, a staff sign-in). */
export const PasskeyRequestOptions = webAuthnOptions({
  rpId: Type.Optional(Type.String()),
  allowCredentials: Type.Optional(
    Type.Array(
      Type.Object(
        {
          id: Type.String(),
          type: Type.Literal('public-key'),
          transports: Type.Optional(Type.Array(Type.String())),
        },
        { additionalProperties: true },
      ),
    ),
  ),
  userVerification: Type.Optional(Type.String()),
  timeout: Type.Optional(Type.Number()),
})
export type PasskeyRequestOptions = Static<typeof PasskeyRequestOptions>

/** A passkey assertion the server verified, for a customer's step-up. */
export const PasskeyVerification = Type.Object({
  factor: Type.Literal('passkey'),
  passkeyId: Type.String(),
  userVerified: Type.Boolean(),
  backedUp: Type.Boolean(),
})
export type PasskeyVerification = Static<typeof PasskeyVerification>

/** A staff member signed in with a passkey: their new staff API token (shown once). */
export const StaffSignIn = Type.Object({
  staffId: Type.String(),
  token: Type.String(),
  tokenId: Type.String(),
  scopes: Type.Array(Type.String()),
  expiresAt: Type.String(),
})
export type StaffSignIn = Static<typeof StaffSignIn>

/** A console session's token as the server issues it: short-lived, within a session that ends at a fixed time. */
export const StaffSessionToken = Type.Object({ ...StaffSignIn.properties, sessionExpiresAt: Type.String() })
export type StaffSessionToken = Static<typeof StaffSessionToken>

/** A console session ended: where the identity provider's own logout is, if it offers one. */
export const SessionEnded = Type.Object({ endSessionUrl: Type.Optional(Type.String()) })

/** A staff member's passkey registered from an invitation link. */
export const InvitedStaffPasskey = Type.Object({ staffId: Type.String(), passkey: Passkey })

const base64url = (maxLength: number) => Type.String({ pattern: '^[A-Za-z0-9_-]*$', minLength: 1, maxLength })
const ClientExtensionResults = Type.Object({}, { additionalProperties: true, maxProperties: 20 })
const Attachment = Type.Optional(oneOf(['platform', 'cross-platform'] as const))

/**
 * What `PublicKeyCredential.toJSON()` gives after `navigator.credentials.create` (WebAuthn Level 3): the new passkey,
 * as the server takes it back.
 */
export const PasskeyRegistrationCredential = Type.Object(
  {
    id: base64url(1366),
    rawId: base64url(1366),
    type: Type.Literal('public-key'),
    response: Type.Object({
      clientDataJSON: base64url(8192),
      attestationObject: base64url(32768),
      authenticatorData: Type.Optional(base64url(16384)),
      transports: Type.Optional(Type.Array(Type.String({ maxLength: 20 }), { maxItems: 10 })),
      publicKey: Type.Optional(base64url(4096)),
      publicKeyAlgorithm: Type.Optional(Type.Integer()),
    }),
    authenticatorAttachment: Attachment,
    clientExtensionResults: ClientExtensionResults,
  },
  { additionalProperties: false },
)
export type PasskeyRegistrationCredential = Static<typeof PasskeyRegistrationCredential>

/** What `PublicKeyCredential.toJSON()` gives after `navigator.credentials.get`: a passkey assertion. */
export const PasskeyAssertion = Type.Object(
  {
    id: base64url(1366),
    rawId: base64url(1366),
    type: Type.Literal('public-key'),
    response: Type.Object({
      clientDataJSON: base64url(8192),
      authenticatorData: base64url(16384),
      signature: base64url(2048),
      userHandle: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]*$', maxLength: 128 })),
    }),
    authenticatorAttachment: Attachment,
    clientExtensionResults: ClientExtensionResults,
  },
  { additionalProperties: false },
)
export type PasskeyAssertion = Static<typeof PasskeyAssertion>

/**
 * The step-up that proves a change to a customer's factors while they hold one: a code of the active authenticator
 * app, or a passkey assertion (`navigator.credentials.get` with the options of `passkeyAuthenticationOptions()`).
 */
export const FactorProof = Type.Union([
  Type.Object({ totpCode: Type.String({ pattern: '^[0-9]{6}$' }) }, { additionalProperties: false }),
  Type.Object({ passkey: PasskeyAssertion }, { additionalProperties: false }),
])
export type FactorProof = Static<typeof FactorProof>

/** A code of the customer's authenticator app (`POST /v1/factors/totp/verify`). */
export const TotpCode = Type.Object(
  { code: Type.String({ pattern: '^[0-9]{6}$', description: 'the 6-digit code the authenticator app shows' }) },
  { additionalProperties: false },
)
export type TotpCode = Static<typeof TotpCode>

/** Texting a customer a one-time code (`POST /v1/factors/sms/send`): staff and backends name the customer. */
export const SmsCodeRequest = Type.Object({ customerId: Type.Optional(idOf('cus')) }, { additionalProperties: false })
export type SmsCodeRequest = Static<typeof SmsCodeRequest>

/** The number a SIM-swap check asks the carrier about (`POST /v1/risk/sim-swap`). */
export const SimSwapCheck = Type.Object(
  { phoneNumber: Type.String({ pattern: E164_PATTERN, description: 'E.164' }) },
  { additionalProperties: false },
)
export type SimSwapCheck = Static<typeof SimSwapCheck>

/** Activating an authenticator app (`POST /v1/factors/totp/confirm`): its first code, and a step-up to replace one. */
export const TotpConfirmation = Type.Object(
  { ...TotpCode.properties, stepUp: Type.Optional(FactorProof) },
  { additionalProperties: false },
)
export type TotpConfirmation = Static<typeof TotpConfirmation>

/** Removing a factor (`POST /v1/factors/:factorId/remove`): proven by a factor at least as strong. */
export const FactorRemoval = Type.Object({ stepUp: Type.Optional(FactorProof) }, { additionalProperties: false })
export type FactorRemoval = Static<typeof FactorRemoval>

/** A staff-assisted reset of a customer's factors (`POST /v1/customers/:customerId/factors/reset`): why. */
export const FactorsResetRequest = Type.Object(
  { reason: Type.String({ minLength: 3, maxLength: 500 }) },
  { additionalProperties: false },
)
export type FactorsResetRequest = Static<typeof FactorsResetRequest>

/** Finishing a passkey's registration: the credential, and a customer's step-up while they hold a factor. */
export const PasskeyRegistration = Type.Object(
  { credential: PasskeyRegistrationCredential, stepUp: Type.Optional(FactorProof) },
  { additionalProperties: false },
)
export type PasskeyRegistration = Static<typeof PasskeyRegistration>

/** Starting a staff sign-in with a passkey (`POST /v1/staff/passkey/sign-in/options`): the bank signed in to. */
export const StaffSignInStart = Type.Object({ tenantId: idOf('ten') }, { additionalProperties: false })
export type StaffSignInStart = Static<typeof StaffSignInStart>

/** A passkey assertion of a device's customer to check (`POST /v1/passkeys/authentication`). */
export const PasskeyCheck = Type.Object({ assertion: PasskeyAssertion }, { additionalProperties: false })
export type PasskeyCheck = Static<typeof PasskeyCheck>

/** Signing a staff member in with a passkey (`POST /v1/staff/passkey/sign-in`), for a token of these scopes. */
export const StaffPasskeySignIn = Type.Object(
  {
    tenantId: idOf('ten'),
    assertion: PasskeyAssertion,
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 12 * 3600 })),
    scopes: Type.Optional(Type.Array(oneOf(staffScopes), { minItems: 1, uniqueItems: true })),
  },
  { additionalProperties: false },
)
export type StaffPasskeySignIn = Static<typeof StaffPasskeySignIn>

/** A staff member's invitation link, as its page reads it (`POST /v1/staff/invitation/passkey/options`). */
export const StaffInvitation = Type.Object(
  { tenantId: idOf('ten'), invitation: Type.String({ minLength: 1, maxLength: 100 }) },
  { additionalProperties: false },
)
export type StaffInvitation = Static<typeof StaffInvitation>

/** Finishing a staff passkey from an invitation link, which this uses up (`POST /v1/staff/invitation/passkey`). */
export const InvitedPasskeyRegistration = Type.Object(
  { ...StaffInvitation.properties, credential: PasskeyRegistrationCredential },
  { additionalProperties: false },
)
export type InvitedPasskeyRegistration = Static<typeof InvitedPasskeyRegistration>

/** The single-use code a staff sign-in handed the console (`POST /v1/staff/oidc/session`). */
export const OidcHandoff = Type.Object(
  { tenantId: idOf('ten'), handoff: Type.String({ pattern: '^sho_[A-Za-z0-9_-]{43}$' }) },
  { additionalProperties: false },
)
export type OidcHandoff = Static<typeof OidcHandoff>

// ── The tenant's step-up policy (`/v1/policies/step-up`) ──

/**
 * Factors beyond the device key that a rule can ask for: `sms-otp`, a code sent by SMS (the weakest second factor,
 * which TOTP or a passkey with user verification also satisfy); `totp`, a second factor (which a passkey with user
 * verification also gives, but an SMS code does not); or `passkey`, a passkey with user verification and nothing else.
 */
export const stepUpFactors = ['sms-otp', 'totp', 'passkey'] as const
export type StepUpFactor = (typeof stepUpFactors)[number]

/** A rule of the step-up policy: when it applies (action, amount, device age, risk flags) and what it asks. */
export const StepUpRule = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 60 }),
    action: Type.Literal('consent.approve'),
    /** The rule applies from this amount (minor units, in this currency) upwards. */
    minAmount: Type.Optional(
      Type.Object(
        { value: Type.Integer({ minimum: 1 }), currency: Type.String({ pattern: '^[A-Z]{3}$' }) },
        { additionalProperties: false },
      ),
    ),
    /** The rule applies to devices enrolled less than this many hours ago. */
    newDeviceHours: Type.Optional(Type.Integer({ minimum: 1, maximum: 8760 })),
    /** The rule applies when the device's integrity token carries one of these risk flags. */
    riskFlags: Type.Optional(Type.Array(Type.String({ maxLength: 40 }), { maxItems: 10 })),
    outcome: Type.Union([
      Type.Object(
        {
          require: Type.Array(Type.Union(stepUpFactors.map((f) => Type.Literal(f))), {
            minItems: 1,
            uniqueItems: true,
          }),
        },
        { additionalProperties: false },
      ),
      Type.Object({ deny: Type.Literal(true) }, { additionalProperties: false }),
    ]),
  },
  { additionalProperties: false },
)
const MaxAmount = Type.Object(
  { value: Type.Integer({ minimum: 0 }), currency: Type.String({ pattern: '^[A-Z]{3}$' }) },
  { additionalProperties: false },
)
export const StepUpPolicy = Type.Object(
  {
    rules: Type.Array(StepUpRule, { maxItems: 50 }),
    /**
     * The largest amount, per currency, that a reply to an SMS ("YES 4821") may approve. A currency not listed may
     * not be approved by SMS reply at all: without this setting, SMS yes/no approves nothing.
     */
    smsReplyMaxAmount: Type.Optional(Type.Array(MaxAmount, { maxItems: 20 })),
    /**
     * The largest amount, per currency, that a browser (a device of kind `web`, where the integrity gate applies) may
     * approve, and then only with a passkey that verified the user. A currency not listed may not be approved from a
     * browser at all: without this setting, browsers approve nothing (they still read, chat and decline).
     */
    webDeviceMaxAmount: Type.Optional(Type.Array(MaxAmount, { maxItems: 20 })),
    /** A SIM change this recent blocks SMS factors for the customer; the deployment's setting (72 h) by default. */
    simSwapWindowHours: Type.Optional(Type.Integer({ minimum: 1, maximum: 2400 })),
    /**
     * Cooling-off: a TOTP factor or passkey added less than this many hours ago satisfies no step-up the rules ask
     * for, and proves no change to another factor; the console shows such a factor as a risk. None without it.
     */
    factorCoolingOffHours: Type.Optional(Type.Integer({ minimum: 1, maximum: 720 })),
  },
  { additionalProperties: false },
)
export type StepUpPolicy = Static<typeof StepUpPolicy>

/** An SMS code to check (`POST /v1/factors/sms/verify`); a backend names the customer. */
export const SmsCodeCheck = Type.Object(
  { code: Type.String({ pattern: '^[0-9]{6}$' }), customerId: Type.Optional(idOf('cus')) },
  { additionalProperties: false },
)
export type SmsCodeCheck = Static<typeof SmsCodeCheck>
