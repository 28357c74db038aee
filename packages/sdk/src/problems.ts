/**
 * The one catalogue of problem types (RFC 9457) the server answers with. Each has a stable `type` URI, an HTTP
 * status and a fixed title; the detail a route adds never carries a secret. The server throws these by kind and the
 * OpenAPI document lists them; clients compare a StrongroomError's `kind` with these names, so a renamed or removed
 * kind fails to compile on both sides.
 */
export const PROBLEM_BASE = 'https://strongroom.dev/problems/'

export const problemKinds = {
  'request/malformed-json': { status: 400, title: 'The request body is not valid JSON' },
  'request/invalid': { status: 400, title: 'The request does not match the schema' },
  'request/unsupported-media-type': { status: 415, title: 'The request body must be application/json' },
  'request/too-large': { status: 413, title: 'The request body is too large' },
  'request/not-found': { status: 404, title: 'No such resource' },
  'request/method-not-allowed': { status: 405, title: 'Method not allowed' },
  'request/bad-url': { status: 400, title: 'The URL is not valid' },
  'request/uri-too-long': { status: 414, title: 'The URL is too long' },
  'request/headers-too-large': { status: 431, title: 'The request headers are too large' },
  'request/bad-http': { status: 400, title: 'The request is not valid HTTP' },
  'request/timeout': { status: 408, title: 'The request was not received in time' },
  'request/rate-limited': { status: 429, title: 'Too many requests: try again after the seconds Retry-After gives' },
  'request/unstorable-value': {
    status: 400,
    title: 'A value is out of range or cannot be stored (text with NUL or unpaired surrogates, a number too large)',
  },
  'request/idempotency-key-reused': {
    status: 422,
    title: 'This Idempotency-Key was already used for a different request: send a new key with a new request',
  },
  'request/idempotency-key-in-progress': {
    status: 409,
    title: 'The first request with this Idempotency-Key is still being processed: try again after Retry-After seconds',
  },
  'auth/missing-credentials': { status: 401, title: 'Credentials are required' },
  'auth/invalid-token': { status: 401, title: 'The access token is invalid or expired' },
  'auth/invalid-dpop-proof': { status: 401, title: 'The DPoP proof is invalid' },
  'auth/dpop-replay': { status: 401, title: 'The DPoP proof was already used' },
  'auth/forbidden': { status: 403, title: 'The credentials do not allow this action' },
  'auth/sign-in-failed': { status: 401, title: 'The sign-in code is invalid, used or expired' },
  'auth/session-ended': { status: 401, title: 'The console session has ended: sign in again' },
  'identity/invalid-enrolment-code': { status: 400, title: 'The enrolment code is invalid, used or expired' },
  'identity/device-key-in-use': { status: 409, title: 'This device key is already enrolled' },
  'identity/unsupported-key': { status: 400, title: 'The device key type is not supported' },
  'identity/device-wiped': {
    status: 401,
    title: 'This device was revoked: erase what Strongroom stored on it, then confirm with the wipe command',
  },
  'identity/device-suspended': {
    status: 403,
    title: 'This device is suspended: it can be resumed by the bank or from another device of the customer',
  },
  'identity/device-revoked': { status: 409, title: 'The device is revoked, which is final' },
  'tenancy/duplicate': { status: 409, title: 'A resource with this name already exists' },
  'tenancy/last-admin': {
    status: 409,
    title: "This is the bank's last active admin: make another staff member admin first",
  },
  'customers/duplicate-reference': { status: 409, title: 'A customer with this reference already exists' },
  'conversations/message-too-large': { status: 413, title: 'The message is larger than the configured limit' },
  'conversations/signal-too-large': {
    status: 413,
    title: 'A typing or read indicator is larger than the limit (MAX_SIGNAL_BYTES)',
  },
  'conversations/attachment-too-large': { status: 413, title: 'The attachment is larger than the configured limit' },
  'conversations/attachment-not-found': { status: 404, title: 'No such attachment in this conversation' },
  'conversations/idempotency-conflict': {
    status: 409,
    title: 'This client message id was already used for a different message',
  },
  'consent/signature-invalid': {
    status: 400,
    title: 'The approval is not a valid signature over exactly the requested transaction',
  },
  'consent/unknown-currency': { status: 400, title: 'The currency is not an ISO 4217 currency' },
  'consent/expired': { status: 410, title: 'The consent request has expired' },
  'consent/already-decided': { status: 409, title: 'The consent request was already approved or declined' },
  'consent/payee-blocked': {
    status: 409,
    title: 'The customer reported an earlier request to this payee as fraud and asked for it to be blocked',
  },
  'auth/invalid-code': { status: 400, title: 'The code is not valid' },
  'risk/sim-swap-unavailable': {
    status: 503,
    title: 'The carrier could not say whether the SIM was swapped; SMS factors stay blocked',
  },
  'risk/sim-swapped': {
    status: 403,
    title: 'The SIM card of this number changed recently; SMS factors are blocked for it',
  },
  'auth/no-phone-number': { status: 409, title: 'The customer has no phone number on file' },
  'auth/sms-rate-limited': { status: 429, title: 'Too many SMS codes were asked for; wait before asking again' },
  'integrity/missing': { status: 401, title: 'An integrity token is required' },
  'integrity/expired': { status: 401, title: 'The integrity token has expired' },
  'integrity/invalid': { status: 401, title: 'The integrity token is not valid' },
  'integrity/wrong-device': { status: 401, title: 'The integrity token was issued to another device' },
  'integrity/wrong-audience': { status: 401, title: 'The integrity token is for another audience' },
  'integrity/limited': { status: 403, title: 'The integrity token allows reading only' },
  'integrity/denied': { status: 403, title: 'The app or device does not meet the integrity policy' },
  'integrity/web-device-refused': {
    status: 403,
    title: 'A browser may not do this where the bank requires app integrity; use the bank’s app',
  },
  'integrity/invalid-evidence': { status: 400, title: 'The attestation evidence does not verify' },
  'integrity/assertion-invalid': {
    status: 401,
    title: 'The request needs a fresh App Attest assertion over its DPoP proof (Strongroom-Assertion)',
  },
  'integrity/no-secrets-key': {
    status: 409,
    title: 'The device has not registered a key to receive secrets (POST /v1/integrity/secrets-key)',
  },
  'integrity/verifier-not-allowed': { status: 400, title: 'This attestation format is not accepted here' },
  'auth/step-up-required': { status: 403, title: 'This needs a stronger authentication' },
  'auth/passkey-invalid': { status: 401, title: 'The passkey could not be verified' },
  'auth/passkey-registration-invalid': { status: 400, title: 'The passkey registration does not verify' },
  'auth/passkey-in-use': { status: 409, title: 'This passkey is already registered' },
  'auth/invitation-invalid': { status: 401, title: 'The invitation link is invalid, used or expired' },
  'auth/passkeys-unavailable': {
    status: 503,
    title: 'Passkeys are not configured (STRONGROOM_RP_ID and STRONGROOM_RP_ORIGINS)',
  },
  'e2e/malformed-message': { status: 400, title: 'The body is not a well-formed MLS message of the expected kind' },
  'e2e/unsupported-suite': { status: 400, title: 'The MLS cipher suite is not allowed' },
  'e2e/invalid-key-package': { status: 400, title: 'The key package is not valid for this member' },
  'e2e/too-many-key-packages': { status: 409, title: 'The member already has the most key packages allowed' },
  'e2e/no-key-package': { status: 409, title: 'The member has no key package left to claim' },
  'e2e/unknown-key-package': {
    status: 400,
    title: 'The commit adds a key package the directory did not hand out for this conversation',
  },
  'e2e/archive-required': {
    status: 400,
    title: 'The first commit of a secure conversation must add the compliance archive',
  },
  'e2e/archive-unavailable': {
    status: 503,
    title:
      'No node runs the compliance archive member (STRONGROOM_ARCHIVE_MEMBER=true on one node): secure conversations wait for it',
  },
  'e2e/archive-removal-refused': {
    status: 403,
    title: 'A commit may not remove the archive (or a member the group does not name) from a secure conversation',
  },
  'e2e/group-exists': { status: 409, title: 'The conversation already has an MLS group' },
  'e2e/no-group': { status: 409, title: 'The conversation has no MLS group yet' },
  'e2e/wrong-group': { status: 400, title: 'The message belongs to another MLS group' },
  'e2e/epoch-conflict': {
    status: 409,
    title: 'The message is not for the group’s current epoch; apply the commits before it and try again',
  },
  'e2e/no-group-info': {
    status: 404,
    title: 'The group has no GroupInfo for its current epoch: ask to be re-added instead (POST …/e2e/readd-requests)',
  },
  'e2e/rejoin-refused': {
    status: 403,
    title: 'Only a member of the conversation re-joins its group, with its own credential, in place of its own leaf',
  },
  'e2e/encryption-required': {
    status: 409,
    title: 'The conversation is end-to-end encrypted: only MLS messages (message/mls) are accepted',
  },
  'channels/invalid-signature': {
    status: 401,
    title: 'The webhook signature is missing or does not verify for a configured channel',
  },
  'channels/malformed-webhook': { status: 400, title: 'The signed webhook payload cannot be read' },
  'channels/verification-refused': { status: 403, title: 'The webhook subscription handshake was refused' },
  'channels/not-configured': { status: 409, title: 'This public channel is not configured for the tenant' },
  'channels/not-public': { status: 409, title: 'The conversation is not on a public channel' },
  'channels/link-not-allowed': {
    status: 422,
    title: "Links sent on a public channel must be on the bank's registered domains (PUT /v1/policies/links)",
  },
  'channels/sensitive-data': {
    status: 422,
    title: 'Card numbers, CVVs, IBANs and similar data may not be sent on a public channel; use the secure channel',
  },
  'channels/outside-service-window': {
    status: 409,
    title:
      "The channel's messaging window is closed: the detail says why, the conversation's channel says which applies",
  },
  'channels/provider-rejected': { status: 502, title: 'The channel provider refused the message' },
  'channels/provider-unavailable': { status: 503, title: 'The channel provider could not be reached; try again' },
  'channels/customer-unreachable': {
    status: 409,
    title:
      'The bank cannot write to this customer first on that channel: no number on file, no Messenger conversation, or another agent’s conversation',
  },
  'channels/customer-unknown': {
    status: 409,
    title: 'The public conversation is not linked to a customer yet; link it before inviting to the secure channel',
  },
  'pivot/invalid-token': { status: 400, title: 'The secure-channel link is not valid' },
  'pivot/token-used': { status: 409, title: 'The secure-channel link was already used' },
  'pivot/token-expired': { status: 410, title: 'The secure-channel link has expired; ask for a new one' },
  'pivot/token-revoked': { status: 410, title: 'A newer secure-channel link replaced this one; use the newest' },
  'pivot/wrong-customer': {
    status: 403,
    title: 'This device belongs to another customer than the one the link was sent to',
  },
  'archive/unavailable': { status: 503, title: 'The compliance archive cannot be read or written from this node' },
  'archive/legal-hold': { status: 409, title: 'A legal hold covers these archive records' },
  'archive/retention-active': { status: 409, title: 'Archive records of this customer are still within retention' },
  'archive/invalid-range': { status: 400, title: 'The time range is invalid' },
  'archive/hold-released': { status: 409, title: 'The legal hold is already released' },
  'channels/report-resolved': { status: 409, title: 'The report of a suspicious message was already resolved' },
  'integrity/attestation-required': {
    status: 403,
    title:
      'The bank requires hardware attestation of the device key at enrolment (see POST /v1/integrity/enrolment-challenges)',
  },
  'server/unavailable': { status: 503, title: 'The service is shutting down or not ready' },
  'server/internal': { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>

export type ProblemKind = keyof typeof problemKinds

/** The catalogue's name for a problem type URI, or undefined for a type that is not Strongroom's. */
export function problemKindOf(type: string): ProblemKind | undefined {
  const kind = type.startsWith(PROBLEM_BASE) ? type.slice(PROBLEM_BASE.length) : undefined
  return kind !== undefined && Object.hasOwn(problemKinds, kind) ? (kind as ProblemKind) : undefined
}
