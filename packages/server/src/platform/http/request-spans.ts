import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { contextFrom, tracer } from '../tracing.ts'

const spans = new WeakMap<FastifyRequest, Span>()

/**
 * A server span for every HTTP request (`METHOD /route`), continuing the caller's trace when it sent a W3C
 * traceparent, active while the handler runs so that what the request causes (its commit, its log lines) joins it.
 * A WebSocket upgrade gets none: the stream's frames get their own.
 */
export function installRequestSpans(app: FastifyInstance): void {
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.headers.upgrade) return done()
    const parent = contextFrom(request.headers)
    const route = request.routeOptions.url ?? 'unmatched'
    const span = tracer.startSpan(
      `${request.method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method, 'http.route': route } },
      parent,
    )
    spans.set(request, span)
    context.with(trace.setSpan(parent, span), done)
  })
  // The body is read between the hooks, outside any context: the span is made active again before the handler.
  app.addHook('preHandler', (request, _reply, done) => {
    const span = spans.get(request)
    if (!span) return done()
    context.with(trace.setSpan(context.active(), span), done)
  })
  app.addHook('onResponse', (request, reply, done) => {
    const span = spans.get(request)
    if (span) {
      span.setAttribute('http.response.status_code', reply.statusCode)
      if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
      span.end()
    }
    done()
  })
}
