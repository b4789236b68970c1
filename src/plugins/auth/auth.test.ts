import { describe, expect, test } from 'bun:test'
import { Elysia } from 'elysia'
import { createTestContext } from '../../../test/support/context'
import { environmentBody } from '../../../test/support/fixtures'
import { ConfigError, loadConfig } from '../../config'
import { ensureBootstrapAdmin } from '../../modules/token/service'
import { MissingRouteScopeError, RouteTable } from './routes'
import { grants, routeScopes, SCOPE_KEY } from './scopes'

const ctx = await createTestContext()
const none = { authorization: '' }

const spec = (await ctx.request('GET', '/docs/json')).body as { paths: Record<string, Record<string, Record<string, unknown>>> }

describe('scope rules', () => {
  // The rules of the README, read back from the scopes the routes declare (x-required-scope in /docs/json).
  test.each([
    ['GET', '/api/v1/environment', 'read'],
    ['POST', '/api/v1/environment', 'write'],
    ['PATCH', '/api/v1/environment/{environment_name}', 'write'],
    ['DELETE', '/api/v1/serve/{serve_name}', 'write'],
    ['POST', '/api/v1/serve/{serve_name}/deploy', 'deploy'],
    ['POST', '/api/v1/serve/{serve_name}/undeploy', 'deploy'],
    ['POST', '/api/v1/serve/{serve_name}/undeploy/{env}', 'deploy'],
    ['POST', '/api/v1/serve/{serve_name}/rollback', 'deploy'],
    ['POST', '/api/v1/serve/deploy-model', 'deploy'],
    ['POST', '/api/v1/serve/undeploy-model', 'deploy'],
    ['PATCH', '/api/v1/serve/{serve_name}/infra-config/{env}', 'deploy'],
    ['POST', '/api/v1/serve/{serve_name}/infra-config/{env}', 'write'],
    ['PUT', '/api/v1/serve/{serve_name}/scaling-schedule/{env}', 'deploy'],
    ['DELETE', '/api/v1/serve/{serve_name}/scaling-schedule/{env}', 'deploy'],
    ['POST', '/api/v1/scaling/tick', 'deploy'],
    ['GET', '/api/v1/tokens', 'admin'],
    ['DELETE', '/api/v1/tokens/{token_id}', 'admin'],
    ['GET', '/api/v1/audit', 'admin'],
    ['GET', '/healthcheck', 'public'],
    ['GET', '/readyz', 'public'],
  ] as const)('%s %s needs %s', (method, path, scope) => {
    expect(spec.paths[path]?.[method.toLowerCase()]?.[SCOPE_KEY]).toBe(scope)
  })

  test('every route of the app declares its scope: public outside /api/, a token scope inside', () => {
    const routes = new RouteTable().bind(ctx.app, { 'GET /docs/json': 'public' }).all()
    const wrong = routes.filter((route) => (route.path.startsWith('/api/') ? route.scope === 'public' : route.scope !== 'public'))
    expect(wrong).toEqual([])
    expect(routes.length).toBe(ctx.app.routes.length)
    expect(routes.filter((route) => route.path.startsWith('/api/')).length).toBeGreaterThan(40)
  })

  test('a route without a declared scope stops the app from being built, naming it', () => {
    const app = new Elysia()
      .use(routeScopes)
      .get('/declared', () => 'ok', { scope: 'read' })
      .post('/api/v1/forgotten/:id', () => 'ok')
      .get('/also-forgotten', () => 'ok')
    expect(() => new RouteTable().bind(app)).toThrow(MissingRouteScopeError)
    expect(() => new RouteTable().bind(app)).toThrow('POST /api/v1/forgotten/:id, GET /also-forgotten')
    // Declared for a third-party plugin's route, where the plugin is mounted: starts.
    expect(new RouteTable().bind(app, { 'POST /api/v1/forgotten/:id': 'admin', 'GET /also-forgotten': 'public' }).all().map((r) => r.scope)).toEqual([
      'read',
      'admin',
      'public',
    ])
  })

  test('the route matched, whatever the spelling of its path, is the one whose scope is checked', () => {
    const routes = new RouteTable().bind(ctx.app, { 'GET /docs/json': 'public' })
    const match = (method: string, url: string) => {
      const route = routes.match(new Request(`http://localhost${url}`, { method }))
      return typeof route === 'object' ? `${route.method} ${route.path} ${route.scope}` : route
    }
    expect(match('POST', '/api/v1/serve/x/deploy/')).toBe('POST /api/v1/serve/:serve_name/deploy deploy')
    expect(match('POST', '/api/v1/serve/y/../x/deploy')).toBe('POST /api/v1/serve/:serve_name/deploy deploy')
    expect(match('POST', '/api/v1/serve/deploy-model/')).toBe('POST /api/v1/serve/deploy-model deploy')
    expect(match('HEAD', '/api/v1/tokens')).toBe('GET /api/v1/tokens admin')
    expect(match('HEAD', '/healthcheck')).toBe('GET /healthcheck public')
    expect(match('POST', '/api/v1/serve/x%2Fdeploy')).toBeUndefined()
    expect(match('OPTIONS', '/api/v1/serve/x/deploy')).toBeUndefined()
    expect(match('POST', '/API/v1/serve/x/deploy')).toBeUndefined()
    // A Host header shorter than Elysia's cut expects: routed on something else than the path, refused.
    expect(routes.match(new Request('http://x/aaa/api/v1/serve/x/deploy', { method: 'POST' }))).toBe('unroutable')
  })

  test('admin implies everything; write and deploy imply read; read implies nothing more', () => {
    expect(grants(['admin'], 'deploy')).toBe(true)
    expect(grants(['write'], 'read')).toBe(true)
    expect(grants(['deploy'], 'read')).toBe(true)
    expect(grants(['read'], 'write')).toBe(false)
    expect(grants(['write'], 'deploy')).toBe(false)
    expect(grants(['deploy'], 'write')).toBe(false)
  })
})

describe('authentication — errors', () => {
  test('no token → 401 on /api routes, before the body is even validated', async () => {
    for (const [method, body] of [['GET', undefined], ['POST', { nonsense: true }]] as const) {
      const response = await ctx.request(method, '/api/v1/environment', body, none)
      expect(response.status).toBe(401)
      expect(response.body).toMatchObject({ status: 'ERROR', code: 'UNAUTHENTICATED' })
    }
  })

  test('a wrong token, a malformed header → 401', async () => {
    expect((await ctx.request('GET', '/api/v1/environment', undefined, { authorization: 'Bearer dms_nope' })).status).toBe(401)
    expect((await ctx.request('GET', '/api/v1/environment', undefined, { authorization: `Basic ${btoa('a:b')}` })).status).toBe(401)
  })

  test('a revoked or expired token → 401', async () => {
    const token = await ctx.createToken(['read'], 'soon-gone')
    expect((await ctx.request('GET', '/api/v1/environment', undefined, { authorization: `Bearer ${token}` })).status).toBe(200)
    await ctx.query("update api_tokens set expires_at = '2000-01-01 00:00:00' where name = 'soon-gone'")
    expect((await ctx.request('GET', '/api/v1/environment', undefined, { authorization: `Bearer ${token}` })).status).toBe(401)
    const other = await ctx.createToken(['read'], 'revoked')
    const [row] = await ctx.query<{ id: number }>("select id from api_tokens where name = 'revoked'")
    expect((await ctx.request('DELETE', `/api/v1/tokens/${row?.id}`)).status).toBe(200)
    expect((await ctx.request('GET', '/api/v1/environment', undefined, { authorization: `Bearer ${other}` })).status).toBe(401)
  })

  test('a missing scope → 403 naming it', async () => {
    const reader = await ctx.createToken(['read'])
    const response = await ctx.request('POST', '/api/v1/environment', environmentBody('forbidden'), { authorization: `Bearer ${reader}` })
    expect(response.status).toBe(403)
    expect(response.body).toMatchObject({ code: 'FORBIDDEN' })
    expect(response.body.message).toContain('"write"')
    expect(await ctx.query("select id from environments where name = 'forbidden'")).toHaveLength(0)
  })
})

describe('authentication — happy path', () => {
  test('health, readiness and docs stay open', async () => {
    for (const path of ['/healthcheck', '/health', '/readyz', '/docs/json', '/redoc']) {
      expect((await ctx.request('GET', path, undefined, none)).status).toBe(200)
    }
  })

  test('a write token creates, a read token reads, and last_used_at is recorded', async () => {
    const writer = await ctx.createToken(['write'], 'writer')
    expect((await ctx.request('POST', '/api/v1/environment', environmentBody('by-writer'), { authorization: `Bearer ${writer}` })).status).toBe(201)
    expect((await ctx.request('GET', '/api/v1/environment/by-writer', undefined, { authorization: `Bearer ${writer}` })).status).toBe(200)
    await Bun.sleep(50)
    const [row] = await ctx.query<{ last_used_at: Date | null }>("select last_used_at from api_tokens where name = 'writer'")
    expect(row?.last_used_at).not.toBeNull()
  })

  test('the bootstrap admin token is created, then rotated to a new configured value', async () => {
    const first = `bootstrap-one-${crypto.randomUUID()}`
    const second = `bootstrap-two-${crypto.randomUUID()}`
    await ensureBootstrapAdmin(ctx.database.db, 'ops-admin', first)
    expect((await ctx.request('GET', '/api/v1/tokens', undefined, { authorization: `Bearer ${first}` })).status).toBe(200)
    await ensureBootstrapAdmin(ctx.database.db, 'ops-admin', second)
    expect((await ctx.request('GET', '/api/v1/tokens', undefined, { authorization: `Bearer ${first}` })).status).toBe(401)
    expect((await ctx.request('GET', '/api/v1/tokens', undefined, { authorization: `Bearer ${second}` })).status).toBe(200)
  })

  test('with no token configured and none in the database, one admin token is generated once', async () => {
    const fresh = await createTestContext()
    await fresh.query('delete from api_tokens')
    const generated = await ensureBootstrapAdmin(fresh.database.db, 'admin', undefined)
    expect(generated).toStartWith('dms_')
    expect(await ensureBootstrapAdmin(fresh.database.db, 'admin', undefined)).toBeUndefined()
    const [row] = await fresh.query<{ token_hash: string }>('select token_hash from api_tokens')
    expect(row?.token_hash).not.toContain(generated as string)
    expect((await fresh.request('GET', '/api/v1/tokens', undefined, { authorization: `Bearer ${generated}` })).status).toBe(200)
  })
})

describe('turning auth off', () => {
  test('is refused outside ENV=local', () => {
    expect(() => loadConfig({ ENV: 'prod', AUTH_ENABLED: 'false' })).toThrow(ConfigError)
  })

  test('with ENV=local, requests need no token', async () => {
    const open = await createTestContext({ ENV: 'local', AUTH_ENABLED: 'false' })
    expect((await open.request('POST', '/api/v1/environment', environmentBody('open-env'), none)).status).toBe(201)
  })
})
