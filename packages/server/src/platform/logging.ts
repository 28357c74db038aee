import pino, { type Logger } from 'pino'
import { traceFields } from './tracing.ts'

/**
 * Paths pino replaces with [redacted] wherever a log line carries them: credentials, codes, keys, message bodies and
 * phone numbers never reach a log. Wildcards cover one level of nesting each, so the common shapes are listed.
 */
export const redactedPaths = [
  'req.headers.authorization',
  'req.headers.dpop',
  'req.headers.cookie',
  'req.headers["x-staff-token"]',
  ...['token', 'accessToken', 'staffToken', 'enrolmentCode', 'code', 'otp', 'ciphertext', 'body', 'text', 'key']
    .concat(['privateKey', 'secret', 'phone', 'phoneNumber', 'msisdn', 'password', 'proof', 'dpop'])
    .flatMap((field) => [field, `*.${field}`, `*.*.${field}`]),
]

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: redactedPaths, censor: '[redacted]' },
      base: { service: 'strongroom' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Inside a traced request, commit or delivery: its trace id, so a log line leads to the trace and back.
      mixin: traceFields,
    },
    destination,
  )
}
export type { Logger }
