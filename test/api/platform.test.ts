/** Cross-cutting behaviour: health, readiness, docs, request ids, access log — over real HTTP too. */
import { afterAll, describe, expect, test } from 'bun:test'
import { createApp } from '../../src/app'
import { loadConfig, mysqlDriver } from '../../src/config'
import { connectDatabase } from '../../src/db/client'
import { createLogger } from '../../src/lib/logger'
import { createTestContext } from '../support/context'

/** The parts of the OpenAPI document these tests read. */
interface OpenApiSpec {
  openapi: string
  paths: Record<string, Record<string, { tags?: string[]; summary: string; responses: object; requestBody?: object }>>
}

const ctx = await createTestContext()
const server = createApp({ ...ctx, log: createLogger({ level: 'silent' }) }).listen({
  port: 0,
  hostname: '127.0.0.1',
})
const base = `http://127.0.0.1:${server.server?.port}`
afterAll(() => server.stop(true))

describe('health and readiness', () => {
  test('GET /healthcheck and /health answer the original body', async () => {
    for (const path of ['/healthcheck', '/health']) {
      const response = await fetch(`${base}${path}`)
      expect(response.status).toBe(200)
      expect(await response.json()).toEqual({ status: 'SUCCESS', message: 'OK' })
    }
  })

  test('GET /readyz is 200 when the database answers', async () => {
    const response = await fetch(`${base}/readyz`)
    expect(response.status).toBe(200)
  })

  test('a database that is down: /readyz 503, API routes 503 in the envelope, liveness still 200', async () => {
    // A port nothing listens on: connections are refused, as when the server is stopped.
    const down = connectDatabase({ driver: mysqlDriver(), url: 'mysql://root@127.0.0.1:1/nowhere', poolSize: 1 })
    const logs: string[] = []
    const app = createApp({ ...ctx, config: loadConfig({ ENV: 'test' }), database: down, log: createLogger({ write: (l) => logs.push(l) }) })
    const ready = await app.handle(new Request('http://localhost/readyz'))
    expect(ready.status).toBe(503)
    expect(await ready.json()).toMatchObject({ status: 'ERROR', code: 'DATABASE_UNAVAILABLE' })
    const list = await app.handle(new Request('http://localhost/api/v1/environment', { headers: { authorization: 'Bearer some-token' } }))
    expect(list.status).toBe(503)
    const body = await list.json()
    expect(body).toMatchObject({ status: 'ERROR', code: 'DATABASE_UNAVAILABLE' })
    expect(JSON.stringify(body)).not.toContain('ECONNREFUSED')
    expect((await app.handle(new Request('http://localhost/healthcheck'))).status).toBe(200)
    await down.close()
  })
})

describe('request ids and the access log', () => {
  test('every response carries x-request-id; a sane one from the client is kept', async () => {
    const generated = await fetch(`${base}/healthcheck`)
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    const kept = await fetch(`${base}/api/v1/environment/none`, {
      headers: { 'x-request-id': 'ci-run-42', authorization: `Bearer ${ctx.adminToken}` },
    })
    expect(kept.status).toBe(404)
    expect(kept.headers.get('x-request-id')).toBe('ci-run-42')
    expect(((await kept.json()) as { request_id: string }).request_id).toBe('ci-run-42')
    const hostile = await fetch(`${base}/healthcheck`, { headers: { 'x-request-id': 'a b"c' } })
    expect(hostile.headers.get('x-request-id')).not.toBe('a b"c')
  })

  test('one JSON log line per request with method, path, status, duration and request id', async () => {
    await ctx.request('GET', '/api/v1/environment/missing', undefined, { 'x-request-id': 'log-check-1' })
    await Bun.sleep(10)
    const line = ctx.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'request' && l.request_id === 'log-check-1')
    expect(line).toMatchObject({ level: 'info', method: 'GET', path: '/api/v1/environment/missing', status: 404 })
    expect(typeof line.duration_ms).toBe('number')
  })
})

describe('API docs', () => {
  test('/docs/json is OpenAPI 3.1 and lists the five environment operations with schemas', async () => {
    const spec = (await (await fetch(`${base}/docs/json`)).json()) as OpenApiSpec
    expect(spec.openapi).toStartWith('3.1')
    const ops = [
      ['post', '/api/v1/environment'],
      ['get', '/api/v1/environment'],
      ['get', '/api/v1/environment/{environment_name}'],
      ['patch', '/api/v1/environment/{environment_name}'],
      ['delete', '/api/v1/environment/{environment_name}'],
    ] as const
    for (const [method, path] of ops) {
      const op = spec.paths[path]?.[method]
      expect(op, `${method} ${path}`).toBeDefined()
      expect(op?.tags).toEqual(['Environment'])
      expect(op?.summary.length).toBeGreaterThan(5)
      expect(Object.keys(op?.responses ?? {})).toContain('422')
    }
    expect(spec.paths['/api/v1/environment']?.post?.requestBody).toBeDefined()
  })

  test('every documented operation has a tag, a summary and responses with an error schema', async () => {
    const spec = (await (await fetch(`${base}/docs/json`)).json()) as OpenApiSpec
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        expect(op.tags?.length, `${method} ${path} tags`).toBeGreaterThan(0)
        expect(op.summary, `${method} ${path} summary`).toBeTruthy()
        expect(op.responses, `${method} ${path} responses`).toBeDefined()
      }
    }
  })

  test('/docs serves the UI and /redoc the ReDoc page', async () => {
    expect((await fetch(`${base}/docs`)).headers.get('content-type')).toContain('text/html')
    const redoc = await fetch(`${base}/redoc`)
    expect(redoc.status).toBe(200)
    expect(await redoc.text()).toContain('/docs/json')
  })
})
