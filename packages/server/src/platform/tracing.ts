import { type Context, context, propagation, ROOT_CONTEXT, type Span, SpanKind, trace } from '@opentelemetry/api'

/**
 * OpenTelemetry traces (STRONGROOM_TRACING=otlp): a request's span, its message's commit and its deliveries on every
 * node, exported over OTLP/HTTP to the collector the standard OTEL_EXPORTER_OTLP_* variables name (the exporter reads
 * them itself), and the trace id on every log line written inside a span. Off by default: then nothing here runs
 * beyond reading `tracingEnabled`, and no span is ever made.
 */
export let tracingEnabled = false

export const tracer = trace.getTracer('strongroom')

/**
 * Starts exporting; the returned function flushes what is queued and stops (at shutdown). The SDK is loaded only here,
 * so that a node with tracing off does not load it at start.
 */
export async function startTracing(serviceName: string): Promise<() => Promise<void>> {
  const [{ AsyncLocalStorageContextManager }, { W3CTraceContextPropagator }, { OTLPTraceExporter }, resources, sdk] =
    await Promise.all([
      import('@opentelemetry/context-async-hooks'),
      import('@opentelemetry/core'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/sdk-trace'),
    ])
  const { defaultResource, detectResources, envDetector, resourceFromAttributes } = resources
  const { BatchSpanProcessor, TracerProvider } = sdk
  const contextManager = new AsyncLocalStorageContextManager().enable()
  context.setGlobalContextManager(contextManager)
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  const provider = new TracerProvider({
    resource: defaultResource()
      .merge(resourceFromAttributes({ 'service.name': serviceName }))
      .merge(detectResources({ detectors: [envDetector] })),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter() })],
  })
  trace.setGlobalTracerProvider(provider)
  tracingEnabled = true
  return async () => {
    tracingEnabled = false
    await provider.shutdown()
    trace.disable()
    propagation.disable()
    context.disable()
  }
}

/** The W3C traceparent of a span, to carry its trace across the bus to other nodes. */
export function traceparentOf(span: Span): string | undefined {
  const carrier: Record<string, string> = {}
  propagation.inject(trace.setSpan(ROOT_CONTEXT, span), carrier)
  return carrier.traceparent
}

/** The context a W3C traceparent (from a request header or a bus event) continues. */
export function contextFrom(carrier: Record<string, unknown>): Context {
  return propagation.extract(ROOT_CONTEXT, carrier)
}

/** Runs `work` inside a new span that ends when it settles (one a stream frame or other unit of work gets). */
export async function inSpan<T>(name: string, parent: Context, work: () => Promise<T>): Promise<T> {
  const span = tracer.startSpan(name, { kind: SpanKind.SERVER }, parent)
  try {
    return await context.with(trace.setSpan(parent, span), work)
  } finally {
    span.end()
  }
}

/** The trace and span ids of the span active where a log line is written, for pino's mixin. */
export function traceFields(): { trace_id?: string; span_id?: string } {
  const span = trace.getSpan(context.active())
  if (!span) return {}
  const { traceId, spanId } = span.spanContext()
  return { trace_id: traceId, span_id: spanId }
}
