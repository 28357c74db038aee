import { type Static, Type } from '@sinclair/typebox'
import { oneOf } from './schema-helpers.ts'

/** A customer of the bank, as the bank registered them. */
export const Customer = Type.Object({
  id: Type.String(),
  externalRef: Type.String(),
  displayName: Type.String(),
  /** E.164, when the bank gave one: where SMS factors go, and what a SIM-swap check asks about. */
  phoneNumber: Type.Optional(Type.String()),
  createdAt: Type.String(),
})
export type Customer = Static<typeof Customer>

/** A phone number in E.164: a plus, the country code, the number, no spaces. */
export const E164_PATTERN = '^\\+[1-9][0-9]{4,14}$'

/** What registering a customer takes (`POST /v1/customers`). */
export const NewCustomer = Type.Object(
  {
    externalRef: Type.String({ minLength: 1, maxLength: 128, description: "the bank's own customer id" }),
    displayName: Type.String({ minLength: 1, maxLength: 200 }),
    phoneNumber: Type.Optional(
      Type.String({
        pattern: E164_PATTERN,
        description: 'E.164; matches texts from public channels (SMS, WhatsApp) to this customer',
      }),
    ),
  },
  { additionalProperties: false },
)
export type NewCustomer = Static<typeof NewCustomer>

/** Why a device is revoked, suspended or resumed, when the caller says (the body of those routes). */
export const DeviceStateChangeBody = Type.Optional(
  Type.Object({ reason: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
)
export type DeviceStateChangeBody = Static<typeof DeviceStateChangeBody>

/** A device as the API shows it (no key material: its key's thumbprint). */
export const Device = Type.Object({
  id: Type.String(),
  customerId: Type.String(),
  /**
   * `app` (can attest its integrity) or `web` (a browser: the secure chat a pivot link opened); the bank's policy says
   * what a browser may do where apps need an integrity token.
   */
  kind: oneOf(['app', 'web'] as const, {
    description: 'an app (can attest) or a browser (the secure chat a pivot link opened; cannot attest)',
  }),
  label: Type.Union([Type.String(), Type.Null()], { description: 'null while pending' }),
  /**
   * `pending` (an enrolment code was issued for it), `active`, `suspended` (cut off for a while, may be resumed) or
   * `revoked` (for good).
   */
  status: oneOf(['pending', 'active', 'suspended', 'revoked'] as const),
  keyThumbprint: Type.Union([Type.String(), Type.Null()], { description: 'null while pending' }),
  createdAt: Type.String(),
  enrolmentExpiresAt: Type.Optional(
    Type.String({ description: 'pending only: when the enrolment code expires unused' }),
  ),
})
export type Device = Static<typeof Device>
export const DeviceList = Type.Object({ devices: Type.Array(Device) })

/** A device as enrolment returns it: active, named, with its key. */
export type ActiveDevice = Device & { status: 'active'; label: string; keyThumbprint: string }

/** A single-use code with which one device of the customer enrols. */
export const EnrolmentCode = Type.Object({
  code: Type.String(),
  expiresAt: Type.String(),
  deviceId: Type.String({ description: 'the id the device gets; listed as pending until it enrols' }),
})
export type EnrolmentCode = Static<typeof EnrolmentCode>

/** A device's access token, bound to its key (DPoP). */
export const DeviceToken = Type.Object({
  accessToken: Type.String(),
  tokenType: Type.Literal('DPoP'),
  expiresIn: Type.Integer(),
})
export type DeviceToken = Static<typeof DeviceToken>

/** A device just enrolled: itself, its bank, and its first access token. */
export const Enrolment = Type.Object({ device: Device, tenantId: Type.String(), token: DeviceToken })

/** A device revoked: it left this many conversations. */
export const DeviceRevoked = Type.Object({
  deviceId: Type.String(),
  status: Type.Literal('revoked'),
  conversationsLeft: Type.Integer(),
})
export type DeviceRevoked = Static<typeof DeviceRevoked>
export const DeviceSuspended = Type.Object({ deviceId: Type.String(), status: Type.Literal('suspended') })
export type DeviceSuspended = Static<typeof DeviceSuspended>
export const DeviceResumed = Type.Object({ deviceId: Type.String(), status: Type.Literal('active') })
export type DeviceResumed = Static<typeof DeviceResumed>

/** The carrier's answer on a number: whether its SIM changed within the bank's window. */
export const SimSwapRisk = Type.Object({
  swapped: Type.Boolean(),
  latestSimChange: Type.Union([Type.String(), Type.Null()]),
  windowHours: Type.Integer(),
  smsFactorsAllowed: Type.Boolean(),
  risk: oneOf(['normal', 'high'] as const),
})
export type SimSwapRisk = Static<typeof SimSwapRisk>

/** The integrity policy's latest decision for a device that attested. */
export const DeviceVerdict = Type.Object({
  deviceId: Type.String(),
  decision: oneOf(['allow', 'limited', 'deny'] as const),
  reason: Type.String(),
  flags: Type.Array(Type.String()),
  format: Type.String({
    description: 'dev, apple-appattest, apple-appattest-assertion, android-key or play-integrity',
  }),
  securityLevel: Type.String(),
  appVersion: Type.String(),
  decidedAt: Type.String({ format: 'date-time' }),
})
export type DeviceVerdict = Static<typeof DeviceVerdict>
export const DeviceVerdictList = Type.Object({ devices: Type.Array(DeviceVerdict) })

/** What a staff member does, which decides the scopes their tokens may carry. */
/** What staff can do, by scope. A token carries a subset of its holder's role scopes, never more. */
export const staffScopes = [
  'conversations:read',
  'conversations:write',
  'conversations:all',
  'conversations:assign',
  'customers:write',
  'customers:export',
  'devices:enrol',
  'devices:revoke',
  'factors:reset',
  'staff:admin',
  'staff:provision',
  'audit:read',
  'consents:write',
  'consents:unblock',
  'archive:read',
  'archive:manage',
  'replies:manage',
] as const

export const staffRoles = ['agent', 'supervisor', 'compliance', 'admin'] as const
export const StaffRole = oneOf(staffRoles)

export const StaffMember = Type.Object({
  id: Type.String(),
  tenantId: Type.String(),
  name: Type.String(),
  /**
   * Null while the bank's identity provider gives them no role (SCIM: in no group its role mapping names): like a
   * deactivated member they hold no token, none is issued, and nobody can give them conversations.
   */
  role: Type.Union([StaffRole, Type.Null()]),
  /** False once deactivated (by an admin or the bank's identity provider): they hold no token. */
  active: Type.Boolean(),
})
export type StaffMember = Static<typeof StaffMember>
export const StaffList = Type.Object({ staff: Type.Array(StaffMember) })

/** Who the credentials stand for: a staff member, a device or a bank backend (`client`), and of which bank. */
export const Me = Type.Object({
  kind: Type.Union([Type.Literal('staff'), Type.Literal('device'), Type.Literal('client')]),
  tenantId: Type.String(),
  staffId: Type.Optional(Type.String()),
  role: Type.Optional(StaffRole),
  scopes: Type.Optional(Type.Array(Type.String())),
  deviceId: Type.Optional(Type.String()),
  customerId: Type.Optional(Type.String()),
  clientId: Type.Optional(Type.String()),
})
export type Me = Static<typeof Me>

/** Adding a staff member to the bank (`POST /v1/staff`). */
export const NewStaffMember = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 100 }), role: StaffRole },
  { additionalProperties: false },
)
export type NewStaffMember = Static<typeof NewStaffMember>

/** A revoked device's confirmation that it erased its local store (`POST /v1/devices/wipe-confirmation`). */
export const WipeConfirmed = Type.Object({ deviceId: Type.String(), wipedAt: Type.String() })
export type WipeConfirmed = Static<typeof WipeConfirmed>
