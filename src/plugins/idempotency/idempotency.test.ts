import { describe, expect, test } from 'bun:test'
import { createTestContext } from '../../../test/support/context'
import { environmentBody } from '../../../test/support/fixtures'

const ctx = await createTestContext()
const post = (body: unknown, key: string, headers: Record<string, string> = {}) =>
  ctx.request('POST', '/api/v1/environment', body, { 'idempotency-key': key, ...headers })

describe('Idempotency-Key', () => {
  test('the same key and body returns the first response and does the work once', async () => {
    const first = await post(environmentBody('idem'), 'key-1')
    const second = await post(environmentBody('idem'), 'key-1')
    expect(first.status).toBe(201)
    expect(second.status).toBe(201)
    expect(second.body).toEqual(first.body)
    expect(second.headers.get('idempotent-replayed')).toBe('true')
    expect(await ctx.query("select id from environments where name = 'idem'")).toHaveLength(1)
    expect(await ctx.query("select id from audit_log where resource_name = 'idem'")).toHaveLength(1)
  })

  test('key order in the body does not matter', async () => {
    const { name, environment_configs } = environmentBody('idem')
    const reordered = await post({ environment_configs, name }, 'key-1')
    expect(reordered.status).toBe(201)
    expect(reordered.headers.get('idempotent-replayed')).toBe('true')
  })

  test('the same key with a different body → 422', async () => {
    const response = await post(environmentBody('idem-other'), 'key-1')
    expect(response.status).toBe(422)
    expect(response.body.code).toBe('IDEMPOTENCY_KEY_REUSED')
    expect(await ctx.query("select id from environments where name = 'idem-other'")).toHaveLength(0)
  })

  test('keys belong to a token: another token with the same key really runs', async () => {
    const other = await ctx.createToken(['write'])
    const response = await post(environmentBody('idem'), 'key-1', { authorization: `Bearer ${other}` })
    expect(response.status).toBe(409)
  })

  test('a failed attempt releases its key, so the retry runs again', async () => {
    const failed = await post(environmentBody('idem'), 'key-2')
    expect(failed.status).toBe(409)
    await Bun.sleep(30)
    await ctx.request('DELETE', '/api/v1/environment/idem')
    const retried = await post(environmentBody('idem'), 'key-2')
    expect(retried.status).toBe(201)
    expect(retried.headers.get('idempotent-replayed')).toBeNull()
  })

  test('concurrent requests with one key: one does the work, the others replay it or are told to retry', async () => {
    const responses = await Promise.all(Array.from({ length: 8 }, () => post(environmentBody('idem-race'), 'key-race')))
    const statuses = responses.map((r) => r.status)
    expect(statuses.filter((s) => s === 201).length).toBeGreaterThanOrEqual(1)
    expect(statuses.every((s) => s === 201 || s === 409)).toBe(true)
    expect(responses.filter((r) => r.status === 201 && r.headers.get('idempotent-replayed') === null)).toHaveLength(1)
    expect(await ctx.query("select id from environments where name = 'idem-race'")).toHaveLength(1)
  })

  test('expired keys are forgotten', async () => {
    await post(environmentBody('idem-exp'), 'key-exp')
    await ctx.query("update idempotency_keys set expires_at = '2000-01-01 00:00:00' where idempotency_key = 'key-exp'")
    const again = await post(environmentBody('idem-exp'), 'key-exp')
    expect(again.status).toBe(409) // really ran again: the environment exists
  })

  test('a malformed key → 422 naming the header', async () => {
    const response = await post(environmentBody('idem-bad'), 'x'.repeat(256))
    expect(response.status).toBe(422)
    expect(response.body.errors).toEqual([{ path: '/headers/idempotency-key', message: 'invalid' }])
  })

  test('token creation is never stored (its response holds the secret)', async () => {
    const response = await ctx.request('POST', '/api/v1/tokens', { name: 'idem-token', scopes: ['read'] }, { 'idempotency-key': 'key-token' })
    expect(response.status).toBe(201)
    expect(await ctx.query("select id from idempotency_keys where idempotency_key = 'key-token'")).toHaveLength(0)
  })
})
