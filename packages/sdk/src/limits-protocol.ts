import { type Static, Type } from '@sinclair/typebox'

/** The wire formats of a tenant's rate limits (`/v1/policies/rate-limits`). Re-exported by `@strongroom/sdk/protocol`. */

/**
 * The actions where each try is a guess at a secret, limited by failed attempts (a success is not counted):
 * opening or redeeming a pivot link, enrolling with a code, checking a one-time code (SMS OTP, TOTP), approving a
 * consent, a staff passkey sign-in, the OAuth token endpoint.
 */
export const guessKinds = [
  'pivot-link',
  'enrolment-code',
  'one-time-code',
  'consent-approval',
  'staff-sign-in',
  'oauth-token',
] as const
export type GuessKind = (typeof guessKinds)[number]

/** The guesses a device makes (the others come before anyone is signed in, so only their address is known). */
export const deviceGuessKinds = ['pivot-link', 'one-time-code', 'consent-approval'] as const satisfies GuessKind[]

const limit = (description: string) => Type.Integer({ minimum: 1, maximum: 100_000_000, description })
const limitsOf = <K extends string>(kinds: readonly K[], per: string) =>
  Type.Object(
    Object.fromEntries(kinds.map((kind) => [kind, limit(`failed ${kind} attempts per window ${per}`)])) as Record<
      K,
      ReturnType<typeof limit>
    >,
    { additionalProperties: false },
  )

export const RateLimitPolicy = Type.Object(
  {
    requestsPerMinute: Type.Object(
      {
        device: limit('requests a minute from one device'),
        customer: limit('requests a minute from all devices of one customer'),
        tenant: limit('requests a minute to the whole tenant'),
      },
      { additionalProperties: false },
    ),
    failedAttempts: Type.Object(
      {
        windowMinutes: Type.Integer({ minimum: 1, maximum: 1440 }),
        // Many customers may share one address (a mobile carrier's NAT): the limits per address are the looser.
        perAddress: limitsOf(guessKinds, 'from one client address'),
        perDevice: limitsOf(deviceGuessKinds, 'by one device, and by all devices of one customer'),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false, $id: 'RateLimitPolicy' },
)
export type RateLimitPolicy = Static<typeof RateLimitPolicy>
