/**
 * The one form of an error's field `path`: JSON Pointer syntax, always with a leading `/`; body
 * fields at the root (`/name`), every other request part named first (`/query/to`,
 * `/params/serve_name`, `/headers/idempotency-key`). Checked on fieldPath itself and on the 422s the
 * HTTP conventions make of Elysia's validation errors.
 */
import { describe, expect, test } from 'bun:test'
import { Elysia, t } from 'elysia'
import { fieldPath } from '../../src/lib/errors'
import { httpConventions } from '../../src/lib/http'
import { createLogger } from '../../src/lib/logger'

describe('fieldPath', () => {
  test('body fields sit at the root; the body itself is /', () => {
    expect(fieldPath('body', '/name')).toBe('/name')
    expect(fieldPath('body', '/windows/1/start')).toBe('/windows/1/start')
    expect(fieldPath('body', '')).toBe('/')
    expect(fieldPath('body', '/')).toBe('/')
  })

  test('every other part is named first', () => {
    expect(fieldPath('query', '/to')).toBe('/query/to')
    expect(fieldPath('params', '/serve_name')).toBe('/params/serve_name')
    expect(fieldPath('headers', '/idempotency-key')).toBe('/headers/idempotency-key')
    expect(fieldPath('cookie', '/session')).toBe('/cookie/session')
    expect(fieldPath('query')).toBe('/query')
    expect(fieldPath('query', '/')).toBe('/query')
  })

  test('a pointer without its leading slash gets one (never a throw: this runs while answering an error)', () => {
    expect(fieldPath('query', 'to')).toBe('/query/to')
    expect(fieldPath('body', 'name')).toBe('/name')
  })
})

describe('validation errors of every request part, as answered', () => {
  const app = new Elysia({ normalize: false })
    .use(httpConventions(createLogger({ level: 'silent' })))
    .post('/things/:id', ({ params }) => params, {
      params: t.Object({ id: t.Integer({ minimum: 1 }) }),
      query: t.Object({ limit: t.Optional(t.Integer({ minimum: 1 })), page: t.Optional(t.Integer({ minimum: 1 })) }),
      headers: t.Object({ 'x-tenant': t.String({ minLength: 3 }) }),
      body: t.Object({ name: t.String({ minLength: 1 }), tags: t.Array(t.String({ maxLength: 3 })) }, { additionalProperties: false }),
    })
  const send = async (path: string, body: unknown, headers: Record<string, string> = { 'x-tenant': 'acme' }) => {
    const response = await app.handle(
      new Request(`http://localhost${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }),
    )
    return { status: response.status, body: (await response.json()) as { code: string; errors?: { path: string }[] } }
  }
  const pathsOf = (answer: { body: { errors?: { path: string }[] } }) => (answer.body.errors ?? []).map((error) => error.path)
  const valid = { name: 'a', tags: ['x'] }

  test('a body field: /field/sub', async () => {
    const answer = await send('/things/1', { name: 'a', tags: ['long'] })
    expect(answer.status).toBe(422)
    expect(pathsOf(answer)).toEqual(['/tags/0'])
  })

  test('the body itself: /', async () => {
    expect(pathsOf(await send('/things/1', 'text'))).toEqual(['/'])
  })

  test('a query parameter: /query/…', async () => {
    expect(pathsOf(await send('/things/1?limit=0', valid))).toEqual(['/query/limit'])
  })

  test('a path parameter: /params/…', async () => {
    expect(pathsOf(await send('/things/abc', valid))).toEqual(['/params/id'])
  })

  test('a number out of range in the query or the path (Elysia checks those after coercing, naming neither)', async () => {
    expect(pathsOf(await send('/things/0', valid))).toEqual(['/params/id'])
    expect(pathsOf(await send('/things/5?limit=0', valid))).toEqual(['/query/limit'])
    expect(pathsOf(await send('/things/0?limit=0', valid))).toEqual(['/params/id', '/query/limit'])
    expect(pathsOf(await send('/things/5?limit=-2&page=7', valid))).toEqual(['/query/limit'])
  })

  test('a header: /headers/…', async () => {
    expect(pathsOf(await send('/things/1', valid, { 'x-tenant': 'a' }))).toEqual(['/headers/x-tenant'])
  })

  test('every path starts with a slash', async () => {
    const answers = await Promise.all([
      send('/things/abc?limit=0', { tags: [1] }, {}),
      send('/things/1', { name: '', tags: 'x', extra: true }),
    ])
    const paths = answers.flatMap(pathsOf)
    expect(paths.length).toBeGreaterThan(1)
    expect(paths.filter((path) => !path.startsWith('/'))).toEqual([])
  })
})
