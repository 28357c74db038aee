import { STATUS_CODES } from 'node:http'
import swagger from '@fastify/swagger'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Ajv, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, LogController } from 'fastify'
import type { Logger } from '../logging.ts'
import type { Metrics } from '../metrics.ts'
import { installDraining } from './draining.ts'
import { documentedSchema, securitySchemes } from './openapi-operations.ts'
import { asProblem, Problem, problemCatalogue } from './problems.ts'
import { installRequestSpans } from './request-spans.ts'
import { hasUnstorableText } from './schemas.ts'
import { installSecurityHeaders } from './security-headers.ts'

export type App = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>

function makeAjv(coerceTypes: boolean): Ajv {
  // Bodies are checked strictly: no coercion ("5" is not 5), nothing unknown silently dropped.
  const ajv = new Ajv({ coerceTypes, removeAdditional: false, useDefaults: true, allErrors: false, strict: false })
  addFormats.default(ajv)
  return ajv
}

/**
 * The schema the validator compiles: the route's own, with every integer that states no bound held to the safe
 * range, where JavaScript still counts exactly (a larger number would reach PostgreSQL rounded, or overflow bigint).
 * The OpenAPI document shows the route's schema as written.
 */
function withSafeIntegers(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withSafeIntegers)
  if (schema === null || typeof schema !== 'object') return schema
  const copy: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(schema)) copy[key] = withSafeIntegers(value)
  if (copy.type === 'integer') {
    copy.maximum ??= Number.MAX_SAFE_INTEGER
    copy.minimum ??= Number.MIN_SAFE_INTEGER
  }
  return copy
}

/**
 * A route's validator, compiled when the route first validates something rather than when the server starts: compiling
 * every route's schemas was about a tenth of a warm start's CPU, for routes a node may never serve. Fastify reads a
 * refusal's errors from the function it was given, so they are passed on.
 */
function compiledOnFirstUse(compile: () => ValidateFunction): ((data: unknown) => boolean) & {
  errors?: ValidateFunction['errors']
} {
  let compiled: ValidateFunction | undefined
  const validate = (data: unknown): boolean => {
    compiled ??= compile()
    const valid = compiled(data)
    validate.errors = compiled.errors
    return valid
  }
  validate.errors = undefined as ValidateFunction['errors']
  return validate
}

const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8'

/** A problem+json answer written straight to a socket, for errors Node raises before there is a request. */
function rawProblemResponse(problem: Problem): string {
  const body = JSON.stringify(problem.toBody())
  return (
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\n` +
    `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'X-Content-Type-Options: nosniff\r\n' +
    'Connection: close\r\n\r\n' +
    body
  )
}

/** What Node's HTTP parser refused, as a problem: 431 for headers too large (414 when the request line alone is). */
function clientErrorProblem(error: Error & { code?: string; rawPacket?: unknown }): Problem {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return new Problem('request/timeout')
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    const packet = Buffer.isBuffer(error.rawPacket) ? error.rawPacket : Buffer.alloc(0)
    const requestLineUnfinished =
      /^[A-Z]+ \S/.test(packet.subarray(0, 64).toString('latin1')) && !packet.includes('\r\n')
    return new Problem(requestLineUnfinished ? 'request/uri-too-long' : 'request/headers-too-large')
  }
  return new Problem('request/bad-http')
}

/** How long a refused connection may go on sending (the rest of its headers) before it is cut. */
const REFUSED_CONNECTION_LINGER_MS = 2000

/**
 * A Fastify instance with the platform's conventions: JSON bodies only, strict schemas, every error rendered as
 * application/problem+json from the catalogue, request metrics, and the OpenAPI document generated from the routes.
 */
export async function createHttpServer(options: {
  logger: Logger
  metrics: Metrics
  bodyLimit: number
  trustProxy: boolean
  /** A span per request (OpenTelemetry), when tracing is on. */
  tracing?: boolean
}): Promise<App> {
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimit,
    trustProxy: options.trustProxy,
    // Per-request log lines are off: metrics count requests, and errors are logged where they happen.
    logController: new LogController({ disableRequestLogging: true }),
    // A draining server answers new requests itself, as problem+json (installDraining).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // A path that does not decode, or a path parameter longer than any id: answered from the catalogue.
    frameworkErrors: (error, _request, reply) => {
      const problem = new Problem(
        error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'request/uri-too-long' : 'request/bad-url',
      )
      reply
        .status(problem.status as never)
        .type(PROBLEM_CONTENT_TYPE)
        .serializer(JSON.stringify)
        .send(problem.toBody() as never)
    },
    // Node refuses some requests before Fastify sees them (headers or URL too large, not HTTP). The answer is a
    // problem document; the connection is then ended gracefully, reading and discarding what the client still sends,
    // since closing a socket with unread data resets it, and the client would see a reset rather than the answer.
    clientErrorHandler: (error, socket) => {
      if ((error as { code?: string }).code === 'ECONNRESET' || socket.destroyed) return
      if (socket.writable) socket.end(rawProblemResponse(clientErrorProblem(error)))
      socket.resume()
      setTimeout(() => socket.destroy(), REFUSED_CONNECTION_LINGER_MS).unref()
    },
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as App

  const bodyAjv = makeAjv(false)
  const paramAjv = makeAjv(true)
  app.setValidatorCompiler(({ schema, httpPart }) =>
    compiledOnFirstUse(() => (httpPart === 'body' ? bodyAjv : paramAjv).compile(withSafeIntegers(schema) as object)),
  )
  app.addHook('preValidation', async (request) => {
    if (hasUnstorableText(request.body) || hasUnstorableText(request.query) || hasUnstorableText(request.params)) {
      throw new Problem('request/unstorable-value', 'text may not contain NUL characters or unpaired surrogates')
    }
  })

  // Only JSON is accepted; anything else is refused before a handler sees it.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(/^application\/(.+\+)?json$/, { parseAs: 'string' }, (_request, body, done) => {
    if (body === '') return done(null, undefined)
    try {
      done(null, JSON.parse(body as string))
    } catch {
      done(new Problem('request/malformed-json'), undefined)
    }
  })
  app.addContentTypeParser('*', (_request, _payload, done) => done(new Problem('request/unsupported-media-type')))

  app.setErrorHandler((error: FastifyError | Problem, request, reply) => {
    const problem = toProblem(error)
    if (problem.status >= 500) request.log.error({ err: error }, 'request failed')
    // Schemas should have refused the value before the database did: worth a look, not an alarm.
    if (problem.kind === 'request/unstorable-value' && !(error instanceof Problem)) {
      request.log.warn({ code: (error as { code?: string }).code }, 'the database refused a value the schema let in')
    }
    if (problem.status === 401) options.metrics.authFailures.inc({ reason: problem.kind })
    if (problem.status === 503) reply.header('retry-after', '1')
    // The problem document is serialized as it is, never through the route's response schema for that status
    // (the token endpoint's 400 is an OAuth error body, which a problem document does not match).
    reply
      .status(problem.status)
      .type(PROBLEM_CONTENT_TYPE)
      .serializer(JSON.stringify)
      .send(problem.toBody(request.url.split('?')[0]))
  })
  app.setNotFoundHandler((request, reply) => {
    reply
      .status(404)
      .type('application/problem+json')
      .send(new Problem('request/not-found').toBody(request.url.split('?')[0]))
  })

  installSecurityHeaders(app)
  installDraining(app)
  if (options.tracing) installRequestSpans(app as unknown as FastifyInstance)

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched'
    options.metrics.httpRequests.inc({ method: request.method, route, status: reply.statusCode })
    options.metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000)
  })

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Strongroom API',
        version: '1',
        license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
        description:
          'Errors are application/problem+json (RFC 9457); their types are listed under x-problem-types. ' +
          'The realtime stream is a WebSocket at /v1/stream, which OpenAPI cannot describe: its frames are the ' +
          'schemas exported by @strongroom/sdk/protocol.',
      },
      // Every deployment serves the API at its own root (STRONGROOM_PUBLIC_URL).
      servers: [{ url: '/', description: 'this deployment' }],
      components: { securitySchemes },
      // The catalogue is part of the contract: clients can switch on these type URIs.
      'x-problem-types': problemCatalogue,
    } as Record<string, unknown>,
    transform: ({ schema, url, route }) => ({
      schema: documentedSchema(schema as Record<string, unknown> | undefined, route) as typeof schema,
      url,
    }),
  })
  return app
}

/** The problem an error stands for: a Problem as it is, a validation or body error as the request's fault. */
export function toProblem(error: FastifyError | Problem): Problem {
  if (error instanceof Problem) return error
  if (error.validation) {
    const errors = error.validation.map((v) => ({
      path: `${error.validationContext ?? 'body'}${v.instancePath || ''}`,
      message:
        v.keyword === 'additionalProperties'
          ? `unknown field ${(v.params as { additionalProperty?: string }).additionalProperty}`
          : (v.message ?? 'is invalid'),
    }))
    return new Problem('request/invalid', errors[0] ? `${errors[0].path}: ${errors[0].message}` : undefined, errors)
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new Problem('request/too-large')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new Problem('request/unsupported-media-type')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new Problem('request/malformed-json')
  }
  if (error.statusCode === 404) return new Problem('request/not-found')
  if (error.statusCode === 503) return new Problem('server/unavailable')
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    return new Problem('request/invalid', 'the request could not be processed')
  }
  return asProblem(error)
}
