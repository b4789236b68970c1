/**
 * /docs/json tells the truth about what a route answers. Every `ctx.request` of the suite already
 * fails on a status its operation does not list (test/support/openapi-contract.ts); this file drives
 * the error cases that no other test reaches for every operation — 400 for a malformed body on every
 * non-GET route, 409 for an Idempotency-Key in use on every POST but /tokens — and the redeploy of a
 * PATCHed infra config answering 409 and 502. It also checks the security requirements: none on the
 * open routes, the bearer token on every /api/ route. 127.0.0.1 only (the fake Kubernetes API).
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { requestHashOf } from '../../src/plugins/idempotency'
import { claimKey } from '../../src/plugins/idempotency/store'
import { createTestContext } from '../support/context'
import { FakeKubernetes } from '../support/fake-kubernetes'
import { environmentBody } from '../support/fixtures'
import { OpenApiContract, type OpenApiSpec } from '../support/openapi-contract'
import { seedNamedResources } from '../support/sweep'

const fake = new FakeKubernetes()
afterAll(() => fake.stop())
const settings = { ENV: 'prod', ROLLOUT_POLL_INTERVAL_MS: '50', CLUSTER_REQUEST_ATTEMPTS: '1', CLUSTER_REQUEST_TIMEOUT_MS: '2000' }
const ctx = await createTestContext(settings, {
  clusterDrivers: fake.drivers(settings),
})
const NS = 'ml-serve'

interface Operation {
  security?: Record<string, string[]>[]
  responses?: Record<string, unknown>
}
const spec = (await ctx.request('GET', '/docs/json')).body as OpenApiSpec & {
  security?: Record<string, string[]>[]
  paths: Record<string, Record<string, Operation>>
}
const contract = await ctx.contract()
const operations = contract.all().filter((operation) => operation.pattern.startsWith('/api/'))


function completeRollout(name: string, replicas = 1) {
  const generation = Number(fake.get('Deployment', NS, name)?.metadata.generation ?? 1)
  fake.setStatus('Deployment', NS, name, { observedGeneration: generation, replicas, updatedReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas })
}

// Resources every path parameter can name (revision 1 of fraud active in prod, artifacts v1 and v2).
const { fill } = await seedNamedResources(ctx, fake, { namespace: NS, versions: ['v1', 'v2'] })
const adminTokenId = (await ctx.query<{ id: number }>("select id from api_tokens where name = 'admin'"))[0]?.id ?? 0
const infra = { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 3, node_capacity_type: 'spot' }

describe('security requirements in /docs/json', () => {
  test('the open routes carry none; every /api/ operation needs the bearer token', () => {
    for (const path of ['/healthcheck', '/health', '/readyz']) {
      expect({ path, security: spec.paths[path]?.get?.security }).toEqual({ path, security: [] })
    }
    expect(spec.security).toEqual([{ bearer: [] }])
    const wrong = operations
      .map(({ method, pattern }) => ({ operation: `${method} ${pattern}`, security: spec.paths[pattern]?.[method.toLowerCase()]?.security ?? spec.security }))
      .filter(({ security }) => JSON.stringify(security) !== JSON.stringify([{ bearer: [] }]))
    expect(wrong).toEqual([])
    expect(operations.length).toBeGreaterThan(40)
  })

  test('and the open routes really answer without a token', async () => {
    for (const path of ['/healthcheck', '/health', '/readyz']) expect((await ctx.request('GET', path, undefined, { authorization: '' })).status).toBe(200)
  })
})

describe('the contract check itself', () => {
  test('flags a status the operation does not list, names both, and lets route-not-found through', () => {
    const trimmed = structuredClone(spec)
    const patch = trimmed.paths['/api/v1/serve/{serve_name}/infra-config/{env}']?.patch
    delete patch?.responses?.['409']
    const check = new OpenApiContract(trimmed)
    expect(check.violation('PATCH', '/api/v1/serve/fraud/infra-config/prod', { status: 409, body: { code: 'CHANGE_IN_PROGRESS' } })).toContain(
      'PATCH /api/v1/serve/fraud/infra-config/prod answered 409 CHANGE_IN_PROGRESS, which /docs/json does not list for PATCH /api/v1/serve/{serve_name}/infra-config/{env}',
    )
    expect(check.violation('PATCH', '/api/v1/serve/fraud/infra-config/prod', { status: 502, body: { code: 'CLUSTER_FAILED' } })).toBeUndefined()
    // GET /api/v1/environment lists no 404: one no route took is not its answer, any other is.
    expect(check.violation('GET', '/api/v1/environment', { status: 404, body: { code: 'ROUTE_NOT_FOUND' } })).toBeUndefined()
    expect(check.violation('GET', '/api/v1/environment', { status: 404, body: { code: 'NOT_FOUND' } })).toContain('answered 404 NOT_FOUND')
    expect(check.violation('GET', '/docs/json', { status: 418 })).toBeUndefined()
  })

  test('a literal segment wins over a parameter; the query and dot segments are resolved first', () => {
    expect(contract.operationFor('POST', '/api/v1/serve/deploy-model?wait=5')?.pattern).toBe('/api/v1/serve/deploy-model')
    expect(contract.operationFor('GET', '/api/v1/serve/fraud')?.pattern).toBe('/api/v1/serve/{serve_name}')
    expect(contract.operationFor('GET', '/api/v1/serve/x/../fraud/deployments/3')?.pattern).toBe('/api/v1/serve/{serve_name}/deployments/{revision}')
    expect(contract.operationFor('DELETE', '/api/v1/nothing')).toBeUndefined()
  })
})

describe('statuses every operation of a kind can answer', () => {
  test('400 MALFORMED_BODY on every non-GET operation (the body is parsed for all of them)', async () => {
    const wrong: string[] = []
    const mutating = operations.filter((operation) => operation.method !== 'GET')
    for (const { method, pattern } of mutating) {
      const response = await ctx.requestUnchecked(method, fill(pattern), '{"broken": ', { 'content-type': 'application/json' })
      const problem = await ctx.undocumentedStatus(method, fill(pattern), response)
      if (response.status !== 400 || response.body?.code !== 'MALFORMED_BODY') wrong.push(`${method} ${pattern} → ${response.status} ${response.body?.code}`)
      if (problem) wrong.push(problem)
    }
    expect(wrong).toEqual([])
    expect(mutating.length).toBeGreaterThanOrEqual(20)
  })

  /** A body each POST accepts (the Idempotency-Key is looked at after validation, before the handler). */
  const POST_BODIES: Record<string, unknown> = {
    '/api/v1/environment': environmentBody('idem-env'),
    '/api/v1/serve': { name: 'idem', type: 'api' },
    '/api/v1/serve/{serve_name}/infra-config/{env}': { api_serve_infra_config: infra },
    '/api/v1/artifact': { serve_name: 'fraud', version: 'v9', image: 'registry.example.com/fraud:v9' },
    '/api/v1/serve/{serve_name}/deploy': { env: 'prod', artifact_version: 'v2' },
    '/api/v1/serve/{serve_name}/rollback': { env: 'prod' },
    '/api/v1/serve/{serve_name}/undeploy': { env: 'prod' },
    '/api/v1/serve/{serve_name}/undeploy/{env}': {},
    '/api/v1/serve/{serve_name}/deployment/{env}/promote': { full: true },
    '/api/v1/serve/{serve_name}/deployment/{env}/abort': {},
    // The schema's defaults are filled in before the key is checked: give them.
    '/api/v1/serve/deploy-model': { serve_name: 'idem-model', model_uri: 'models:/fraud/3', env: 'prod', cores: 1, memory: 2 },
    '/api/v1/serve/undeploy-model': { serve_name: 'fraud', env: 'prod' },
    '/api/v1/scaling/tick': {},
  }
  // Its response holds a secret that is never stored: no Idempotency-Key there.
  const WITHOUT_IDEMPOTENCY = new Set(['/api/v1/tokens'])

  test('409 IDEMPOTENCY_IN_PROGRESS on every POST but /tokens, while a request with the same key runs', async () => {
    const posts = operations.filter((operation) => operation.method === 'POST' && !WITHOUT_IDEMPOTENCY.has(operation.pattern))
    expect(posts.map((operation) => operation.pattern).filter((pattern) => !(pattern in POST_BODIES))).toEqual([])
    const wrong: string[] = []
    for (const { pattern } of posts) {
      const path = fill(pattern)
      const body = POST_BODIES[pattern]
      const key = `in-progress-${pattern}`
      // The first request with this key, still running.
      const claim = await claimKey(ctx.database.db, { key, actorTokenId: adminTokenId, method: 'POST', path, requestHash: requestHashOf('', body), ttlMs: 3_600_000 })
      expect(claim.kind).toBe('claimed')
      const response = await ctx.request('POST', path, body, { 'idempotency-key': key })
      if (response.status !== 409 || response.body?.code !== 'IDEMPOTENCY_IN_PROGRESS') wrong.push(`POST ${pattern} → ${response.status} ${JSON.stringify(response.body)}`)
    }
    expect(wrong).toEqual([])
  })
})

describe('PATCH of a deployed serve\'s infra config answers what its redeploy answers', () => {
  const patch = (body: unknown) => ctx.request('PATCH', '/api/v1/serve/fraud/infra-config/prod', body)
  const pattern = '/api/v1/serve/{serve_name}/infra-config/{env}'

  test('/docs/json lists 409 and 502 for it', () => {
    const operation = contract.operationFor('PATCH', '/api/v1/serve/fraud/infra-config/prod')
    expect(operation?.pattern).toBe(pattern)
    expect([...(operation?.statuses ?? [])]).toEqual(expect.arrayContaining([400, 404, 409, 422, 502, 503]))
  })

  test('409 CHANGE_IN_PROGRESS while another change is being applied; nothing is saved', async () => {
    // The deploy's apply is slow, so the PATCH arrives while it holds the lock in `pending`.
    fake.setDelay(300)
    const deploying = ctx.request('POST', '/api/v1/serve/fraud/deploy', { env: 'prod', artifact_version: 'v2' })
    await Bun.sleep(100)
    const refused = await patch({ api_serve_infra_config: { max_replicas: 3 } })
    fake.setDelay(0)
    expect((await deploying).status).toBe(201)
    expect(refused.status).toBe(409)
    expect(refused.body.code).toBe('CHANGE_IN_PROGRESS')
    const [row] = await ctx.query<{ max_replicas: number }>('select max_replicas from infra_configs')
    expect(row?.max_replicas).not.toBe(3)
    completeRollout('fraud-prod')
    await ctx.deployment.tracker.tick()
    expect((await ctx.request('GET', '/api/v1/serve/fraud/deployment/prod')).body.data.active.artifact_version).toBe('v2')
  })

  test('502 CLUSTER_FAILED when the cluster refuses the redeploy; the revision is failed, no lock is left', async () => {
    fake.failNext({ method: 'PATCH', status: 500, message: 'etcdserver: request timed out' })
    const failed = await patch({ api_serve_infra_config: { max_replicas: 5 } })
    expect(failed.status).toBe(502)
    expect(failed.body.code).toBe('CLUSTER_FAILED')
    const [latest] = await ctx.query<{ status: string; reason: string }>('select status, reason from deployments order by revision desc limit 1')
    expect(latest).toEqual({ status: 'failed', reason: 'infra-update' })
    expect(await ctx.query('select * from change_locks')).toEqual([])
    // The retry redeploys.
    const retried = await patch({ api_serve_infra_config: { max_replicas: 5 } })
    expect(retried.status).toBe(200)
  })
})
