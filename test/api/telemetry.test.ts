/**
 * Telemetry against a local OTLP/HTTP receiver (JSON, as the exporter sends it): a request yields a
 * SERVER span named after its route with the request id, database statements nest under it, a
 * `withSpan` call nests too, and the request's log lines carry its trace id. With telemetry off no
 * SDK module is even loaded.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { resolve } from 'node:path'
import { SpanKind } from '@opentelemetry/api'
import { startTelemetry, telemetryEnabled, withSpan } from '../../src/lib/telemetry'
import { createTestContext } from '../support/context'
import { environmentBody } from '../support/fixtures'

interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  status?: { code?: number }
  attributes: { key: string; value: { stringValue?: string; intValue?: number | string } }[]
}
interface OtlpExport {
  resourceSpans: { resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: { spans: OtlpSpan[] }[] }[]
}

const received: OtlpExport[] = []
const receiver = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  async fetch(request) {
    if (request.method !== 'POST' || new URL(request.url).pathname !== '/v1/traces') return new Response('not found', { status: 404 })
    received.push((await request.json()) as OtlpExport)
    return Response.json({})
  },
})

const spans = () => received.flatMap((e) => e.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)))
const attribute = (span: OtlpSpan, key: string) => {
  const value = span.attributes.find((a) => a.key === key)?.value
  return value?.stringValue ?? (value?.intValue === undefined ? undefined : Number(value.intValue))
}

const telemetry = await startTelemetry({ enabled: true, serviceName: 'darwin-ml-serve-test', otlpEndpoint: `http://127.0.0.1:${receiver.port}` })
const ctx = await createTestContext()

afterAll(async () => {
  await telemetry.shutdown()
  receiver.stop(true)
})

describe('telemetry on', () => {
  test('request, database and withSpan spans reach the OTLP receiver, correlated by trace and request id', async () => {
    expect(telemetryEnabled()).toBe(true)
    expect((await ctx.request('POST', '/api/v1/environment', environmentBody('otel'))).status).toBe(201)
    const read = await ctx.request('GET', '/api/v1/environment/otel', undefined, { 'x-request-id': 'otel-request-1' })
    expect(read.status).toBe(200)
    const missing = await ctx.request('GET', '/api/v1/environment/nowhere', undefined, { 'x-request-id': 'otel-request-2' })
    expect(missing.status).toBe(404)
    await withSpan('outer', { 'test.case': 'nesting' }, () => withSpan('cluster.apply', { 'k8s.kind': 'Deployment' }, async () => 'done', SpanKind.CLIENT))
    await expect(withSpan('failing', {}, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom')
    // shutdown() flushes the batch processor; the receiver has everything afterwards.
    await telemetry.shutdown()
    expect(telemetryEnabled()).toBe(false)

    const all = spans()
    const serviceNames = received.flatMap((e) => e.resourceSpans.map((r) => r.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue))
    expect(serviceNames).toContain('darwin-ml-serve-test')

    const server = all.find((s) => attribute(s, 'http.request.id') === 'otel-request-1')
    expect(server).toBeDefined()
    expect(server!.name).toBe('GET /api/v1/environment/:environment_name')
    expect(server!.kind).toBe(2) // SERVER
    expect(attribute(server!, 'http.route')).toBe('/api/v1/environment/:environment_name')
    expect(attribute(server!, 'http.response.status_code')).toBe(200)

    const queries = all.filter((s) => s.parentSpanId === server!.spanId && s.kind === 3) // CLIENT
    expect(queries.length).toBeGreaterThan(0)
    expect(queries.every((q) => q.traceId === server!.traceId)).toBe(true)
    expect(queries.map((q) => attribute(q, 'db.system.name'))).toContain('mysql')
    expect(queries.some((q) => /select/i.test(String(attribute(q, 'db.query.text'))))).toBe(true)

    const notFound = all.find((s) => attribute(s, 'http.request.id') === 'otel-request-2')
    expect(attribute(notFound!, 'http.response.status_code')).toBe(404)

    const outer = all.find((s) => s.name === 'outer')!
    const inner = all.find((s) => s.name === 'cluster.apply')!
    expect(inner.parentSpanId).toBe(outer.spanId)
    expect(inner.kind).toBe(3)
    expect(all.find((s) => s.name === 'failing')?.status?.code).toBe(2) // ERROR

    const accessLog = ctx.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'request' && l.request_id === 'otel-request-1')
    expect(accessLog?.trace_id).toBe(server!.traceId)
  })

  test('an incoming traceparent is continued', async () => {
    const restarted = await startTelemetry({ enabled: true, serviceName: 'darwin-ml-serve-test', otlpEndpoint: `http://127.0.0.1:${receiver.port}` })
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
    await ctx.request('GET', '/healthcheck', undefined, { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, 'x-request-id': 'otel-parent' })
    await restarted.shutdown()
    const span = spans().find((s) => attribute(s, 'http.request.id') === 'otel-parent')
    expect(span?.traceId).toBe(traceId)
    expect(span?.parentSpanId).toBe('00f067aa0ba902b7')
  })
})

describe('telemetry off', () => {
  test('withSpan just runs the function', async () => {
    const off = await startTelemetry({ enabled: false, serviceName: 'x', otlpEndpoint: 'http://127.0.0.1:1' })
    expect(telemetryEnabled()).toBe(false)
    expect(await withSpan('noop', {}, async (span) => span.isRecording())).toBe(false)
    await off.shutdown()
  })

  test('no SDK module is loaded by the app when ENABLE_OTEL is off', () => {
    const script = `
      const { createApp } = await import(${JSON.stringify(resolve(import.meta.dir, '../../src/app.ts'))})
      const { startTelemetry } = await import(${JSON.stringify(resolve(import.meta.dir, '../../src/lib/telemetry.ts'))})
      await startTelemetry({ enabled: false, serviceName: 'x', otlpEndpoint: 'http://127.0.0.1:1' })
      console.log(JSON.stringify(Object.keys(require.cache).filter((k) => k.includes('@opentelemetry/') && !k.includes('@opentelemetry/api/'))))`
    const run = Bun.spawnSync([process.execPath, '-e', script], { stdout: 'pipe', stderr: 'pipe' })
    expect(run.stderr.toString()).toBe('')
    expect(JSON.parse(run.stdout.toString())).toEqual([])
  })
})

describe('telemetry with the collector down', () => {
  test('export failures are dropped: shutdown is quick and the process lives on', async () => {
    const script = `
      const { startTelemetry, withSpan } = await import(${JSON.stringify(resolve(import.meta.dir, '../../src/lib/telemetry.ts'))})
      const { freePort } = await import(${JSON.stringify(resolve(import.meta.dir, '../../src/db/local-server.ts'))})
      const telemetry = await startTelemetry({ enabled: true, serviceName: 'x', otlpEndpoint: 'http://127.0.0.1:' + (await freePort()) })
      await withSpan('lost', {}, async () => 1)
      const started = performance.now()
      await telemetry.shutdown()
      await Bun.sleep(200)
      console.log(JSON.stringify({ alive: true, shutdown_ms: performance.now() - started }))
      process.exit(0)`
    const run = Bun.spawnSync([process.execPath, '-e', script], { stdout: 'pipe', stderr: 'pipe' })
    expect(run.exitCode).toBe(0)
    const report = JSON.parse(run.stdout.toString()) as { alive: boolean; shutdown_ms: number }
    expect(report.alive).toBe(true)
    // The server exits right after (src/index.ts); the final flush must fit its shutdown budget.
    expect(report.shutdown_ms).toBeLessThan(3_000)
  }, 15_000)
})
