/**
 * The auth sweep: for every operation under /api/ in /docs/json, no token, a garbage token and a
 * revoked token each get 401, and a token without the scope the route needs gets 403 — with path
 * parameters filled with resources that exist, so the answer proves auth runs before the 404 and
 * before any validation. Every answer's status must be one the operation lists in /docs/json. Then one successful call per mutating operation, each checked to have
 * written its audit entry (`METHOD /api/v1/...pattern`, outcome success) in the same request.
 * 127.0.0.1 only (the fake Kubernetes API); bounded in time.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import type { TokenScope } from '../../src/db/schema'
import { SCOPE_KEY } from '../../src/plugins/auth/scopes'
import { createTestContext } from '../support/context'
import { FakeKubernetes } from '../support/fake-kubernetes'
import { environmentBody } from '../support/fixtures'
import { resourceTableChecksums, seedNamedResources } from '../support/sweep'

const fake = new FakeKubernetes()
afterAll(() => fake.stop())
const settings = { ENV: 'prod', ROLLOUT_POLL_INTERVAL_MS: '50', CLUSTER_REQUEST_ATTEMPTS: '1', CLUSTER_REQUEST_TIMEOUT_MS: '2000' }
const ctx = await createTestContext(settings, {
  clusterDrivers: fake.drivers(settings),
})
const NS = 'ml-serve'

interface Operation {
  parameters?: { in: string; name: string }[]
  /** The scope the route declares (src/plugins/auth/scopes.ts). */
  [SCOPE_KEY]?: TokenScope
}
const spec = (await ctx.request('GET', '/docs/json')).body as { paths: Record<string, Record<string, Operation>> }
const operations = Object.entries(spec.paths)
  .filter(([path]) => path.startsWith('/api/'))
  .flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ method: method.toUpperCase(), path, scope: operation[SCOPE_KEY] })))
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** What a Deployment controller would report once every replica of the current spec is up. */
function completeRollout(name: string, replicas = 2) {
  const generation = Number(fake.get('Deployment', NS, name)?.metadata.generation ?? 1)
  fake.setStatus('Deployment', NS, name, { observedGeneration: generation, replicas, updatedReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas })
}

async function expectStatus(expected: number, method: string, path: string, body?: unknown, headers?: Record<string, string>) {
  const response = await ctx.request(method, path, body, headers)
  if (response.status !== expected) throw new Error(`${method} ${path}: expected ${expected}, got ${response.status} ${JSON.stringify(response.body)}`)
  return response
}

const { fill } = await seedNamedResources(ctx, fake, { namespace: NS })


describe('auth sweep over every /api/ operation in /docs/json', () => {
  test('401 without a token, with a garbage token and with a revoked token; 403 without the needed scope', async () => {
    const revoked = await ctx.createToken(['admin'], 'soon-revoked')
    const revokedRow = (await ctx.query<{ id: number }>("select id from api_tokens where name = 'soon-revoked'"))[0]
    await expectStatus(200, 'DELETE', `/api/v1/tokens/${revokedRow?.id}`)
    // For each scope a route can need, a token holding everything but it (admin implies all).
    const lacking: Record<Exclude<TokenScope, 'read'>, { token: string; scopes: TokenScope[] }> = {
      write: { token: await ctx.createToken(['read', 'deploy']), scopes: ['read', 'deploy'] },
      deploy: { token: await ctx.createToken(['read', 'write']), scopes: ['read', 'write'] },
      admin: { token: await ctx.createToken(['read', 'write', 'deploy']), scopes: ['read', 'write', 'deploy'] },
    }
    const unauthenticated: Record<string, string> = {
      'no token': '',
      'garbage token': 'Bearer not-a-token-at-all',
      'revoked token': `Bearer ${revoked}`,
      'wrong scheme': `Basic ${btoa(`admin:${ctx.adminToken}`)}`,
    }
    const before = await resourceTableChecksums(ctx)
    const wrong: string[] = []
    const undocumented: string[] = []
    /** Sends, and notes an answer whose status the operation does not list in /docs/json. */
    const send = async (method: string, target: string, body: unknown, headers: Record<string, string>) => {
      const response = await ctx.requestUnchecked(method, target, body, headers)
      const problem = await ctx.undocumentedStatus(method, target, response)
      if (problem) undocumented.push(problem)
      return response
    }
    let unauthorized = 0
    let forbidden = 0
    let readOnly = 0
    for (const { method, path, scope } of operations) {
      const target = fill(path)
      // A body that would be valid somewhere: the answer must come from auth, not validation.
      const body = MUTATING.has(method) ? { env: 'prod' } : undefined
      for (const [label, authorization] of Object.entries(unauthenticated)) {
        const response = await send(method, target, body, { authorization })
        if (response.status === 401 && response.body?.code === 'UNAUTHENTICATED') unauthorized++
        else wrong.push(`${method} ${target} (${label}) → ${response.status}`)
      }
      const needed = scope
      if (needed === undefined) {
        wrong.push(`${method} ${path}: /docs/json names no ${SCOPE_KEY}`)
        continue
      }
      // Read routes can't be 403-tested: every scope implies `read` and a token has at least one
      // scope. Admin-only reads (tokens, audit) are tested with a read,write,deploy token.
      if (needed === 'read') {
        readOnly++
        continue
      }
      const { token, scopes } = lacking[needed]
      const response = await send(method, target, body, { authorization: `Bearer ${token}` })
      if (response.status === 403 && response.body?.code === 'FORBIDDEN' && String(response.body?.message).includes(`"${needed}"`)) forbidden++
      else wrong.push(`${method} ${target} (token with ${scopes.join(',')}, needs ${needed}) → ${response.status}`)
    }
    console.log(
      `auth sweep: ${operations.length} operations, ${unauthorized}×401 (no/garbage/revoked token, wrong scheme), ${forbidden}×403 (missing scope), ${readOnly} read routes with no 403 to test, ${wrong.length} wrong, ${undocumented.length} statuses not in /docs/json`,
    )
    expect(wrong).toEqual([])
    expect(undocumented).toEqual([])
    expect(unauthorized).toBe(operations.length * 4)
    expect(forbidden).toBe(operations.length - readOnly)
    expect(await resourceTableChecksums(ctx)).toEqual(before)
    expect(operations.length).toBeGreaterThan(40)
  }, 60_000)
})

describe('every mutating operation writes its audit entry on success', () => {
  /** One successful call per mutating operation, in an order where each one's preconditions hold. */
  interface Call {
    method: string
    pattern: string
    path: string | (() => string)
    body?: unknown
    status: number
    after?: () => Promise<void>
  }
  const tickFor = (name: string) => async () => {
    completeRollout(name, 1)
    await ctx.deployment.tracker.tick()
  }
  const tick = tickFor('audited-prod')
  const infra = { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 2, max_replicas: 4, node_capacity_type: 'spot' }
  let tokenId = 0
  const CALLS: Call[] = [
    { method: 'POST', pattern: '/api/v1/environment', path: '/api/v1/environment', body: environmentBody('audit-env'), status: 201 },
    { method: 'PATCH', pattern: '/api/v1/environment/{environment_name}', path: '/api/v1/environment/audit-env', body: { namespace: 'other' }, status: 200 },
    { method: 'DELETE', pattern: '/api/v1/environment/{environment_name}', path: '/api/v1/environment/audit-env', status: 200 },
    { method: 'POST', pattern: '/api/v1/serve', path: '/api/v1/serve', body: { name: 'audited', type: 'api' }, status: 201 },
    { method: 'PATCH', pattern: '/api/v1/serve/{serve_name}', path: '/api/v1/serve/audited', body: { description: 'audited serve' }, status: 200 },
    { method: 'POST', pattern: '/api/v1/serve/{serve_name}/infra-config/{env}', path: '/api/v1/serve/audited/infra-config/prod', body: { api_serve_infra_config: infra }, status: 201 },
    {
      method: 'PATCH',
      pattern: '/api/v1/serve/{serve_name}/infra-config/{env}',
      path: '/api/v1/serve/audited/infra-config/prod',
      body: { api_serve_infra_config: { max_replicas: 5 } },
      status: 200,
    },
    { method: 'POST', pattern: '/api/v1/artifact', path: '/api/v1/artifact', body: { serve_name: 'audited', version: 'v1', image: 'registry.example.com/audited:v1' }, status: 201 },
    {
      method: 'PUT',
      pattern: '/api/v1/serve/{serve_name}/scaling-schedule/{env}',
      path: '/api/v1/serve/audited/scaling-schedule/prod',
      body: { timezone: 'UTC', windows: [{ name: 'night', start: '0 22 * * *', duration_minutes: 60, min_replicas: 1, max_replicas: 2 }] },
      status: 200,
    },
    { method: 'DELETE', pattern: '/api/v1/serve/{serve_name}/scaling-schedule/{env}', path: '/api/v1/serve/audited/scaling-schedule/prod', status: 200 },
    { method: 'POST', pattern: '/api/v1/serve/{serve_name}/deploy', path: '/api/v1/serve/audited/deploy', body: { env: 'prod', artifact_version: 'v1' }, status: 201, after: tick },
    {
      method: 'POST',
      pattern: '/api/v1/serve/{serve_name}/deploy',
      path: '/api/v1/serve/audited/deploy',
      body: { env: 'prod', artifact_version: 'v1', api_serve_deployment_config: { environment_variables: { RUN: '2' } } },
      status: 201,
      after: tick,
    },
    { method: 'POST', pattern: '/api/v1/serve/{serve_name}/rollback', path: '/api/v1/serve/audited/rollback', body: { env: 'prod' }, status: 201, after: tick },
    {
      method: 'POST',
      pattern: '/api/v1/serve/{serve_name}/deploy',
      path: '/api/v1/serve/audited/deploy',
      body: { env: 'prod', artifact_version: 'v1', api_serve_deployment_config: { deployment_strategy: 'canary', canary: { step_seconds: 3600 }, environment_variables: { RUN: '3' } } },
      status: 201,
    },
    { method: 'POST', pattern: '/api/v1/serve/{serve_name}/deployment/{env}/promote', path: '/api/v1/serve/audited/deployment/prod/promote', body: {}, status: 200 },
    { method: 'POST', pattern: '/api/v1/serve/{serve_name}/deployment/{env}/abort', path: '/api/v1/serve/audited/deployment/prod/abort', status: 200 },
    { method: 'POST', pattern: '/api/v1/serve/{serve_name}/undeploy', path: '/api/v1/serve/audited/undeploy', body: { env: 'prod' }, status: 200 },
    { method: 'POST', pattern: '/api/v1/serve/{serve_name}/deploy', path: '/api/v1/serve/audited/deploy', body: { env: 'prod', artifact_version: 'v1' }, status: 201, after: tick },
    { method: 'POST', pattern: '/api/v1/serve/{serve_name}/undeploy/{env}', path: '/api/v1/serve/audited/undeploy/prod', status: 200 },
    {
      method: 'POST',
      pattern: '/api/v1/serve/deploy-model',
      path: '/api/v1/serve/deploy-model',
      body: { serve_name: 'one-click', model_uri: 'models:/fraud/3', env: 'prod' },
      status: 201,
      after: tickFor('one-click-prod'),
    },
    { method: 'POST', pattern: '/api/v1/serve/undeploy-model', path: '/api/v1/serve/undeploy-model', body: { serve_name: 'one-click', env: 'prod' }, status: 200 },
    { method: 'DELETE', pattern: '/api/v1/serve/{serve_name}', path: '/api/v1/serve/audited', status: 200 },
    {
      method: 'POST',
      pattern: '/api/v1/tokens',
      path: '/api/v1/tokens',
      body: { name: 'audited-token', scopes: ['read'] },
      status: 201,
      after: async () => {
        tokenId = (await ctx.query<{ id: number }>("select id from api_tokens where name = 'audited-token'"))[0]?.id ?? 0
      },
    },
    { method: 'DELETE', pattern: '/api/v1/tokens/{token_id}', path: () => `/api/v1/tokens/${tokenId}`, status: 200 },
    // Who triggered a tick; what it changed is per serve in scaling_events (test/api/scaling-tick.test.ts).
    { method: 'POST', pattern: '/api/v1/scaling/tick', path: '/api/v1/scaling/tick', status: 200 },
  ]
  const NOT_AUDITED = new Set<string>()

  test('the table covers every mutating operation in /docs/json', () => {
    const mutating = operations.filter((o) => MUTATING.has(o.method)).map((o) => `${o.method} ${o.path}`)
    const covered = new Set([...CALLS.map((c) => `${c.method} ${c.pattern}`), ...NOT_AUDITED])
    expect(mutating.filter((o) => !covered.has(o))).toEqual([])
  })

  test('each successful mutation has its success entry, with the route pattern as action, in the same request', async () => {
    const missing: string[] = []
    let index = 0
    for (const call of CALLS) {
      const requestId = `audit-sweep-${index++}`
      const path = typeof call.path === 'function' ? call.path() : call.path
      await expectStatus(call.status, call.method, path, call.body, { 'x-request-id': requestId })
      await call.after?.()
      const action = `${call.method} ${call.pattern.replace(/\{(\w+)\}/g, ':$1')}`
      const rows = await ctx.query<{ action: string; outcome: string; actor_name: string; status_code: number }>(
        'select action, outcome, actor_name, status_code from audit_log where request_id = ?',
        [requestId],
      )
      if (!rows.some((r) => r.action === action && r.outcome === 'success' && r.actor_name === 'admin' && r.status_code < 400)) {
        missing.push(`${call.method} ${path}: ${JSON.stringify(rows)}`)
      }
    }
    console.log(`audit sweep: ${CALLS.length} successful mutations over ${new Set(CALLS.map((c) => `${c.method} ${c.pattern}`)).size} operations, ${CALLS.length - missing.length} with their success entry`)
    expect(missing).toEqual([])
  }, 60_000)
})
