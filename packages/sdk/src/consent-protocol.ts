import { type Static, Type } from '@sinclair/typebox'
import { idOf, oneOf } from './schema-helpers.ts'

/** A payment the customer is asked to confirm, as the server shows it. */
export const ConsentRequest = Type.Object({
  id: Type.String(),
  status: oneOf(['pending', 'approved', 'declined', 'expired'] as const),
  bankName: Type.Optional(Type.String({ description: 'the bank asking, by the name its customers know' })),
  customerId: Type.String(),
  amount: Type.Object({ value: Type.Integer(), currency: Type.String() }),
  payee: Type.Object({ name: Type.String(), account: Type.String() }),
  reference: Type.String(),
  challenge: Type.String(),
  createdAt: Type.String(),
  expiresAt: Type.String(),
  /** When it was approved or declined. */
  decidedAt: Type.Optional(Type.String()),
  fraudReported: Type.Optional(
    Type.Boolean({ description: 'declined by the customer as not theirs ("This wasn\'t me")' }),
  ),
  payeeBlocked: Type.Optional(
    Type.Boolean({ description: 'with the fraud report: further requests to the payee are refused' }),
  ),
  receipt: Type.Optional(Type.String({ description: 'JWS (ES256) verifiable with /.well-known/jwks.json' })),
})
export type ConsentRequest = Static<typeof ConsentRequest>
export const ConsentList = Type.Object({ consents: Type.Array(ConsentRequest) })

/**
 * Which receipt keys the JWKS (`GET /.well-known/jwks.json`) lists: with `tenant`, only those that sign for that bank,
 * the key set the bank pins; without, every bank's.
 */
export const ReceiptKeysQuery = Type.Object({ tenant: Type.Optional(idOf('ten')) }, { additionalProperties: false })
export type ReceiptKeysQuery = Static<typeof ReceiptKeysQuery>

/** Which consent requests to list: a device its customer's pending ones (optionally one conversation's), staff one conversation's. */
export const ConsentListQuery = Type.Object(
  {
    conversationId: Type.Optional(idOf('cnv')),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'staff only; 20 by default' })),
  },
  { additionalProperties: false },
)
export type ConsentListQuery = Static<typeof ConsentListQuery>

/** A payee a customer blocked by declining a request as "This wasn't me"; a lifted block stays listed, as evidence. */
export const PayeeBlock = Type.Object({
  consentId: Type.String({ description: 'the request the customer declined as "This wasn\'t me", blocking its payee' }),
  customerId: Type.String(),
  payee: Type.Object({ name: Type.String(), account: Type.String() }),
  blockedAt: Type.String(),
  liftedAt: Type.Union([Type.String(), Type.Null()], { description: 'null while the block is in force' }),
  liftedBy: Type.Union([Type.String(), Type.Null()], { description: 'who lifted it (`staff:stf_…`)' }),
})
export type PayeeBlock = Static<typeof PayeeBlock>
export const PayeeBlockList = Type.Object({ blocks: Type.Array(PayeeBlock) })

/** A payment the bank asks a customer to confirm, as the bank sends it. */
export const NewConsent = Type.Object(
  {
    customerId: idOf('cus'),
    conversationId: Type.Optional(idOf('cnv')),
    amount: Type.Object(
      {
        value: Type.Integer({ minimum: 1, maximum: 10 ** 15, description: 'minor units: 125000 is EUR 1,250.00' }),
        currency: Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217' }),
      },
      { additionalProperties: false },
    ),
    payee: Type.Object(
      {
        name: Type.String({ minLength: 1, maxLength: 140 }),
        account: Type.String({ minLength: 1, maxLength: 64, description: 'IBAN or account number' }),
      },
      { additionalProperties: false },
    ),
    reference: Type.String({ minLength: 1, maxLength: 140 }),
    expiresInSeconds: Type.Optional(Type.Integer({ minimum: 30, maximum: 86400 })),
  },
  { additionalProperties: false },
)
export type NewConsent = Static<typeof NewConsent>

/** Approving a payment (`POST /v1/consents/:consentId/approve`): the device key's signature, and a code when the step-up policy asks. */
export const ConsentApproval = Type.Object(
  {
    signature: Type.String({ minLength: 1, maxLength: 8192 }),
    totpCode: Type.Optional(Type.String({ pattern: '^[0-9]{6}$', description: 'when the step-up policy asks' })),
    smsCode: Type.Optional(
      Type.String({
        pattern: '^[0-9]{6}$',
        description: 'the SMS code, when the step-up policy asks for sms-otp',
      }),
    ),
  },
  { additionalProperties: false },
)
export type ConsentApproval = Static<typeof ConsentApproval>

/** Declining a payment (`POST /v1/consents/:consentId/decline`): the customer's reason, or a fraud report. */
export const ConsentDecline = Type.Object(
  {
    reason: Type.Optional(Type.String({ maxLength: 200 })),
    fraud: Type.Optional(Type.Boolean({ description: 'the customer did not ask for this payment' })),
    blockPayee: Type.Optional(Type.Boolean({ description: 'refuse further requests to this payee account' })),
  },
  { additionalProperties: false },
)
export type ConsentDecline = Static<typeof ConsentDecline>

/** Lifting a payee block (`POST /v1/consents/:consentId/payee-block/lift`): why, for the audit log. */
export const PayeeBlockLift = Type.Object(
  {
    reason: Type.String({
      minLength: 3,
      maxLength: 500,
      description: 'why, for the audit log (such as how the customer confirmed the payee is theirs)',
    }),
  },
  { additionalProperties: false },
)
export type PayeeBlockLift = Static<typeof PayeeBlockLift>

/** A consent's SMS confirmation sent (`POST /v1/consents/:consentId/sms-confirmation`): until when the reply counts. */
export const SmsConfirmationSent = Type.Object({ expiresAt: Type.String() })
