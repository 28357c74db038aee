import { type Static, Type } from '@sinclair/typebox'
import { staffScopes } from './identity-protocol.ts'
import { oneOf } from './schema-helpers.ts'

/**
 * The wire formats of a tenant's administration: staff tokens and invitations, the staff token policy, the bank
 * backends registered as OAuth clients and their token endpoint. Re-exported by `@strongroom/sdk/protocol`.
 */

/** How long a staff token may live when the tenant has not said: the route's and the command's own maximum. */
export const STAFF_TOKEN_MAX_SECONDS = 90 * 86400

/** The longest a staff invitation link lives (a week). */
export const STAFF_INVITATION_MAX_SECONDS = 7 * 86400

/** A staff API token to issue (`POST /v1/staff/:staffId/tokens`): 8 hours and the holder's role scopes by default. */
export const StaffTokenRequest = Type.Object(
  {
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: STAFF_TOKEN_MAX_SECONDS })),
    scopes: Type.Optional(Type.Array(oneOf(staffScopes), { minItems: 1, uniqueItems: true })),
  },
  { additionalProperties: false },
)
export type StaffTokenRequest = Static<typeof StaffTokenRequest>

/** A staff API token, shown once. */
export const IssuedStaffToken = Type.Object({
  token: Type.String(),
  tokenId: Type.String(),
  scopes: Type.Array(Type.String()),
  expiresAt: Type.String(),
})
export type IssuedStaffToken = Static<typeof IssuedStaffToken>

/** How long a staff invitation link lives (`POST /v1/staff/:staffId/invitations`): a day by default. */
export const StaffInvitationRequest = Type.Object(
  { ttlSeconds: Type.Optional(Type.Integer({ minimum: 300, maximum: STAFF_INVITATION_MAX_SECONDS })) },
  { additionalProperties: false },
)
export type StaffInvitationRequest = Static<typeof StaffInvitationRequest>

/** A staff invitation: the single-use console link, shown once. */
export const IssuedStaffInvitation = Type.Object({
  invitationId: Type.String(),
  staffId: Type.String(),
  url: Type.String(),
  expiresAt: Type.String(),
})
export type IssuedStaffInvitation = Static<typeof IssuedStaffInvitation>

/** The tenant's limit on staff token lifetimes (`/v1/policies/staff-tokens`). */
export const StaffTokenPolicy = Type.Object(
  {
    maxTokenSeconds: Type.Integer({
      minimum: 60,
      maximum: STAFF_TOKEN_MAX_SECONDS,
      description: 'the longest a staff token may live; a token asked for longer is issued for this long',
    }),
  },
  { additionalProperties: false },
)
export type StaffTokenPolicy = Static<typeof StaffTokenPolicy>

/**
 * What a bank backend may be given: it asks for consents and registers customers and their devices; the bank's
 * identity provider provisions staff (SCIM).
 */
export const apiClientScopes = [
  'consents:write',
  'customers:write',
  'devices:enrol',
  'staff:provision',
] as const satisfies readonly (typeof staffScopes)[number][]
export type ApiClientScope = (typeof apiClientScopes)[number]

/** A public JWK of a client's assertion keys; private members are refused. */
const PublicJwk = Type.Object(
  {
    kty: Type.String(),
    kid: Type.Optional(Type.String()),
    alg: Type.Optional(Type.String()),
    use: Type.Optional(Type.String()),
    crv: Type.Optional(Type.String()),
    x: Type.Optional(Type.String()),
    y: Type.Optional(Type.String()),
    n: Type.Optional(Type.String()),
    e: Type.Optional(Type.String()),
  },
  { additionalProperties: false, description: 'a public JWK; private members are refused' },
)

/** A bank backend to register as an OAuth client (`POST /v1/api-clients`), with its private_key_jwt keys. */
export const NewApiClient = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    jwks: Type.Object({ keys: Type.Array(PublicJwk, { minItems: 1, maxItems: 10 }) }, { additionalProperties: false }),
    scopes: Type.Array(oneOf(apiClientScopes), { minItems: 1, uniqueItems: true }),
    webhookUrl: Type.Optional(
      Type.String({
        format: 'uri',
        maxLength: 2000,
        description: 'where decisions are posted (https in production)',
      }),
    ),
  },
  { additionalProperties: false },
)
export type NewApiClient = Static<typeof NewApiClient>

/** A registered bank backend: its client id, and where it asks for tokens. */
export const ApiClient = Type.Object({
  clientId: Type.String(),
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  tokenEndpoint: Type.String(),
})
export type ApiClient = Static<typeof ApiClient>

/** The authorization server's metadata (RFC 8414), for bank backends that discover the token endpoint. */
export const AuthorizationServerMetadata = Type.Object({
  issuer: Type.String(),
  token_endpoint: Type.String(),
  grant_types_supported: Type.Array(Type.String()),
  token_endpoint_auth_methods_supported: Type.Array(Type.String()),
  token_endpoint_auth_signing_alg_values_supported: Type.Array(Type.String()),
})
export type AuthorizationServerMetadata = Static<typeof AuthorizationServerMetadata>

/**
 * The token endpoint's request (`POST /v1/oauth/token`), form-encoded as RFC 6749 has it: client_credentials with a
 * private_key_jwt assertion (RFC 7523). Every field is optional so that a malformed request is answered in OAuth's
 * own error format rather than refused by validation.
 */
export const ClientTokenRequest = Type.Object({
  grant_type: Type.Optional(Type.String({ maxLength: 100 })),
  client_assertion_type: Type.Optional(Type.String({ maxLength: 200 })),
  client_assertion: Type.Optional(Type.String({ maxLength: 8192 })),
  scope: Type.Optional(Type.String({ maxLength: 500 })),
})
export type ClientTokenRequest = Static<typeof ClientTokenRequest>

/** A bank backend's access token (RFC 6749 §5.1). */
export const ClientToken = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  scope: Type.String(),
})
export type ClientToken = Static<typeof ClientToken>

/** The token endpoint's refusal (RFC 6749 §5.2), in place of a problem document. */
export const OAuthErrorBody = Type.Object(
  { error: Type.String(), error_description: Type.String() },
  { description: 'RFC 6749 §5.2 error' },
)
