/**
 * OpenTelemetry traces. Only `@opentelemetry/api` is imported statically: with ENABLE_OTEL off (the
 * default for ENV=local) the API's no-op globals stay in place, no SDK module is evaluated and
 * `withSpan` calls its function directly, so start-up and the request path pay nothing.
 * When on, `startTelemetry` loads the SDK, an AsyncLocalStorage context manager (so database and
 * client spans nest under their request span) and the OTLP/HTTP JSON exporter.
 */
import {
  type Attributes,
  context,
  INVALID_SPAN_CONTEXT,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api'
import type { Config } from '../config'

const TRACER = 'darwin-ml-serve'
const NOOP_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT)
const FINAL_FLUSH_MS = 2_000

export interface Telemetry {
  /** Flushes pending spans and restores the no-op globals. */
  shutdown(): Promise<void>
}

let active: Telemetry | undefined

export const telemetryEnabled = () => active !== undefined

export async function startTelemetry(settings: Config['telemetry']): Promise<Telemetry> {
  if (!settings.enabled) return { shutdown: async () => {} }
  if (active) throw new Error('telemetry is already started')
  const [{ TracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }, { ATTR_SERVICE_NAME }, { AsyncLocalStorageContextManager }, { W3CTraceContextPropagator }] =
    await Promise.all([
      import('@opentelemetry/sdk-trace'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/semantic-conventions'),
      import('@opentelemetry/context-async-hooks'),
      import('@opentelemetry/core'),
    ])
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName }),
    // OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL; the exporter wants the traces path.
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${settings.otlpEndpoint}/v1/traces` }) })],
  })
  const contextManager = new AsyncLocalStorageContextManager().enable()
  context.setGlobalContextManager(contextManager)
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  trace.setGlobalTracerProvider(provider)
  const telemetry: Telemetry = {
    shutdown: async () => {
      if (active !== telemetry) return
      active = undefined
      // With the collector unreachable the final flush retries for seconds, then rejects: losing
      // that last batch must neither eat the graceful-shutdown budget nor crash the process (it
      // did: an unhandled rejection at SIGTERM).
      await Promise.race([provider.shutdown().catch(() => {}), Bun.sleep(FINAL_FLUSH_MS)])
      trace.disable()
      context.disable()
      propagation.disable()
    },
  }
  active = telemetry
  return telemetry
}

/**
 * Runs `fn` inside a child span of the current one (a request, usually): the span records the
 * error and ends when `fn` settles. Cluster, builder and other outbound clients wrap each call
 * with it (kind CLIENT), and send `traceHeaders()` so the callee joins the trace.
 */
export async function withSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  if (!active) return fn(NOOP_SPAN)
  return trace.getTracer(TRACER).startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await fn(span)
    } catch (error) {
      recordError(span, error)
      throw error
    } finally {
      span.end()
    }
  })
}

function recordError(span: Span, error: unknown) {
  // Only the class and message: query parameters and bodies can hold secrets.
  const message = error instanceof Error ? error.message : String(error)
  span.recordException({ name: error instanceof Error ? error.name : 'Error', message })
  span.setStatus({ code: SpanStatusCode.ERROR, message })
}

/** W3C `traceparent` for an outbound request, so the callee's spans join this trace. */
export function traceHeaders(): Record<string, string> {
  const headers: Record<string, string> = {}
  if (active) propagation.inject(context.active(), headers)
  return headers
}

/** trace_id/span_id of the active span, for log lines; empty when there is none. */
export function traceFields(): { trace_id?: string; span_id?: string } {
  if (!active) return {}
  const span = trace.getActiveSpan()
  if (!span) return {}
  const { traceId, spanId } = span.spanContext()
  return { trace_id: traceId, span_id: spanId }
}

/**
 * Serves one request inside a SERVER span that continues any incoming `traceparent`; the span ends
 * with the response status (ERROR from 500) and the request id (known only once `handle` ran).
 */
export async function traceRequest(
  request: Request,
  requestId: () => string,
  handle: () => Response | Promise<Response>,
): Promise<Response> {
  const url = new URL(request.url)
  const parent = propagation.extract(context.active(), Object.fromEntries(request.headers))
  const span = trace.getTracer(TRACER).startSpan(
    request.method,
    { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method, 'url.path': url.pathname } },
    parent,
  )
  try {
    const response = await context.with(trace.setSpan(parent, span), handle)
    span.setAttribute('http.response.status_code', response.status)
    if (response.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
    return response
  } catch (error) {
    recordError(span, error)
    throw error
  } finally {
    span.setAttribute('http.request.id', requestId())
    span.end()
  }
}

/** Names the request span once its route is known: `GET /api/v1/environment/:environment_name`. */
export function nameRequestSpan(method: string, route: string) {
  const span = active ? trace.getActiveSpan() : undefined
  if (!span) return
  span.updateName(`${method} ${route}`)
  span.setAttribute('http.route', route)
}
