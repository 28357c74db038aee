/**
 * Connector failures. Each has a stable `code` and a fixed message: nothing from the request, the provider's answer or
 * the configuration (tokens, secrets, phone numbers, message text) ever ends up in a message, so they are safe to log.
 */
export abstract class ConnectorError extends Error {
  abstract readonly code: string
}

export type SignatureFailure = 'missing' | 'malformed' | 'mismatch'

export class WebhookSignatureError extends ConnectorError {
  readonly code = 'webhook/invalid-signature'
  constructor(readonly reason: SignatureFailure) {
    super(`webhook signature ${reason}`)
    this.name = 'WebhookSignatureError'
  }
}

/** A signed payload we cannot read; `reason` is one of a fixed set of descriptions, never a value from the payload. */
export class WebhookPayloadError extends ConnectorError {
  readonly code = 'webhook/malformed-payload'
  constructor(readonly reason: string) {
    super(`webhook payload malformed: ${reason}`)
    this.name = 'WebhookPayloadError'
  }
}

/** Meta's subscription handshake with the wrong mode or verify token. */
export class SubscriptionVerificationError extends ConnectorError {
  readonly code = 'webhook/verification-refused'
  constructor() {
    super('webhook subscription verification refused')
    this.name = 'SubscriptionVerificationError'
  }
}

/**
 * The provider refused the message (an HTTP 4xx other than 429, or an SMPP error status that is not about load);
 * sending it again will not help.
 */
export class ProviderRejectedError extends ConnectorError {
  readonly code = 'provider/rejected'
  /** What the provider answered, for people: `HTTP 400`, or `SMPP ESME_RINVDSTADR (0x0000000B)`. */
  readonly answer: string
  constructor(
    /** The HTTP status, or the SMPP command_status of submit_sm_resp. */
    readonly status: number,
    /** The provider's own error code (Twilio `code`, Meta `error.code`, the SMPP status name), when it gave one. */
    readonly providerCode: string | undefined,
    protocol: 'http' | 'smpp' = 'http',
  ) {
    const answer =
      protocol === 'http'
        ? `HTTP ${status}`
        : `SMPP ${providerCode ?? 'status'} (0x${status.toString(16).toUpperCase().padStart(8, '0')})`
    super(`provider rejected the message with ${answer}`)
    this.name = 'ProviderRejectedError'
    this.answer = answer
  }
}

/** The SMSC refused our credentials: nothing is sent on that link until the channel is configured again. */
export class SmppBindRefusedError extends ConnectorError {
  readonly code = 'smpp/bind-refused'
  constructor() {
    super('the SMSC refused to bind with the configured system_id and password')
    this.name = 'SmppBindRefusedError'
  }
}

/** Network errors, 429 or 5xx on every attempt; the message may be sent again later. */
export class ProviderUnavailableError extends ConnectorError {
  readonly code = 'provider/unavailable'
  constructor(
    readonly attempts: number,
    /** The last HTTP status, or undefined when the last attempt failed on the network. */
    readonly lastStatus: number | undefined,
    /** How long the provider asked us to wait, when it asked for longer than we wait in place. */
    readonly retryAfterMs?: number,
  ) {
    super(`provider unavailable after ${attempts} attempt${attempts === 1 ? '' : 's'}`)
    this.name = 'ProviderUnavailableError'
  }
}

/** A success status whose body lacks the message id. */
export class ProviderResponseError extends ConnectorError {
  readonly code = 'provider/unexpected-response'
  constructor() {
    super('provider accepted the message but its answer could not be read')
    this.name = 'ProviderResponseError'
  }
}

/** Messenger: the customer last wrote more than 24 hours ago, and a HUMAN_AGENT reply is not allowed (or too late). */
export class MessengerWindowClosedError extends ConnectorError {
  readonly code = 'messenger/outside-messaging-window'
  constructor() {
    super('the customer has not written within the messaging window: nothing may be sent until they write again')
    this.name = 'MessengerWindowClosedError'
  }
}

export class OutsideServiceWindowError extends ConnectorError {
  readonly code = 'whatsapp/outside-service-window'
  constructor() {
    super('the customer has not written in the last 24 hours: only an approved template may be sent')
    this.name = 'OutsideServiceWindowError'
  }
}
