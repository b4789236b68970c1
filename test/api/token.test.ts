import { describe, expect, test } from 'bun:test'
import { createTestContext } from '../support/context'

const ctx = await createTestContext()

describe('tokens — happy path', () => {
  test('POST creates a token shown once; only its hash is stored', async () => {
    const response = await ctx.request('POST', '/api/v1/tokens', { name: 'ci', scopes: ['write', 'read', 'deploy'], expires_in_days: 30 })
    expect(response.status).toBe(201)
    const { token, ...rest } = response.body.data
    expect(token).toStartWith('dms_')
    expect(rest).toMatchObject({ name: 'ci', scopes: ['deploy', 'read', 'write'], created_by: 'admin', revoked_at: null })
    expect(rest.token_prefix).toBe(token.slice(0, 12))
    expect(new Date(rest.expires_at).getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000)
    const rows = await ctx.query<Record<string, unknown>>("select * from api_tokens where name = 'ci'")
    expect(JSON.stringify(rows)).not.toContain(token)
  })

  test('GET lists tokens without their values; revoked ones only on request', async () => {
    const list = await ctx.request('GET', '/api/v1/tokens')
    expect(list.status).toBe(200)
    expect(list.body.data.map((t: { name: string }) => t.name)).toEqual(['admin', 'ci'])
    expect(JSON.stringify(list.body)).not.toContain('"token"')
    const id = list.body.data[1].id
    const revoked = await ctx.request('DELETE', `/api/v1/tokens/${id}`)
    expect(revoked.status).toBe(200)
    expect(revoked.body.data.revoked_at).not.toBeNull()
    expect((await ctx.request('DELETE', `/api/v1/tokens/${id}`)).body.data.revoked_at).toBe(revoked.body.data.revoked_at)
    expect((await ctx.request('GET', '/api/v1/tokens')).body.data).toHaveLength(1)
    expect((await ctx.request('GET', '/api/v1/tokens?include_revoked=true')).body.data).toHaveLength(2)
  })
})

describe('tokens — errors', () => {
  test('duplicate name → 409; bad scopes or name → 422; unknown id → 404', async () => {
    expect((await ctx.request('POST', '/api/v1/tokens', { name: 'admin', scopes: ['read'] })).status).toBe(409)
    expect((await ctx.request('POST', '/api/v1/tokens', { name: 'x', scopes: ['root'] })).status).toBe(422)
    expect((await ctx.request('POST', '/api/v1/tokens', { name: 'x', scopes: [] })).status).toBe(422)
    expect((await ctx.request('POST', '/api/v1/tokens', { name: 'bad name', scopes: ['read'] })).status).toBe(422)
    expect((await ctx.request('DELETE', '/api/v1/tokens/999999')).status).toBe(404)
  })
})

describe('tokens — security', () => {
  test('only admin tokens may manage tokens', async () => {
    const deployer = await ctx.createToken(['read', 'write', 'deploy'])
    const auth = { authorization: `Bearer ${deployer}` }
    expect((await ctx.request('GET', '/api/v1/tokens', undefined, auth)).status).toBe(403)
    expect((await ctx.request('POST', '/api/v1/tokens', { name: 'escalate', scopes: ['admin'] }, auth)).status).toBe(403)
    expect((await ctx.request('DELETE', '/api/v1/tokens/1', undefined, auth)).status).toBe(403)
    expect((await ctx.request('GET', '/api/v1/tokens', undefined, { authorization: '' })).status).toBe(401)
  })

  test('a token value never reaches the logs', async () => {
    const token = await ctx.createToken(['read'])
    await ctx.request('GET', '/api/v1/environment', undefined, { authorization: `Bearer ${token}` })
    await Bun.sleep(20)
    expect(ctx.logs.join('\n')).not.toContain(token)
    expect(ctx.logs.join('\n')).not.toContain(ctx.adminToken)
  })
})
