import swagger from '@fastify/swagger'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, LogController } from 'fastify'
import type { Logger } from '../logging.ts'
import type { Metrics } from '../metrics.ts'
import { asProblem, Problem, problemCatalogue } from './problems.ts'
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
 * A Fastify instance with the platform's conventions: JSON bodies only, strict schemas, every error rendered as
 * application/problem+json from the catalogue, request metrics, and the OpenAPI document generated from the routes.
 */
export async function createHttpServer(options: {
  logger: Logger
  metrics: Metrics
  bodyLimit: number
  trustProxy: boolean
}): Promise<App> {
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimit,
    trustProxy: options.trustProxy,
    // Per-request log lines are off: metrics count requests, and errors are logged where they happen.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as App

  const bodyAjv = makeAjv(false)
  const paramAjv = makeAjv(true)
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? bodyAjv : paramAjv).compile(schema as object),
  )

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
    if (problem.status === 401) options.metrics.authFailures.inc({ reason: problem.kind })
    if (problem.status === 503) reply.header('retry-after', '1')
    reply
      .status(problem.status)
      .type('application/problem+json')
      .send(problem.toBody(request.url.split('?')[0]))
  })
  app.setNotFoundHandler((request, reply) => {
    reply
      .status(404)
      .type('application/problem+json')
      .send(new Problem('request/not-found').toBody(request.url.split('?')[0]))
  })

  installSecurityHeaders(app)

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
        description:
          'Errors are application/problem+json (RFC 9457); their types are listed under x-problem-types. ' +
          'The realtime stream is a WebSocket at /v1/stream, which OpenAPI cannot describe: its frames are the ' +
          'schemas exported by @strongroom/sdk/protocol.',
      },
      components: {
        securitySchemes: {
          staffToken: { type: 'http', scheme: 'bearer', description: 'Staff API token (srs_…)' },
          deviceToken: {
            type: 'http',
            scheme: 'DPoP',
            description: 'Device access token (srd_…) with a DPoP proof header (RFC 9449)',
          },
        },
      },
      // The catalogue is part of the contract: clients can switch on these type URIs.
      'x-problem-types': problemCatalogue,
    } as Record<string, unknown>,
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
