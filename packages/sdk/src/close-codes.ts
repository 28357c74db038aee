// Apart from protocol.ts, whose schema compilers generate code at run time: a page under a CSP without
// 'unsafe-eval' imports the stream, and with it these codes, but never the compilers.

/**
 * WebSocket close codes the server uses; the SDK reconnects on all but `unauthorized` (twice), `revoked` and
 * `suspended`.
 */
export const CloseCode = {
  serviceRestart: 1012,
  protocolError: 4000,
  unauthorized: 4001,
  tokenExpired: 4002,
  revoked: 4003,
  /** The device was suspended: it may be resumed later, so nothing is wiped, but reconnecting is pointless now. */
  suspended: 4004,
  slowConsumer: 4008,
} as const
