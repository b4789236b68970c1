import { describe, expect, test } from 'bun:test'
import { Elysia } from 'elysia'
import { httpConventions } from '../../src/lib/http'
import { createLogger } from '../../src/lib/logger'
import { infraConfigController } from '../../src/modules/infra-config'
import type { InfraConfigChange } from '../../src/modules/infra-config/service'
import { authPlugin } from '../../src/plugins/auth'
import { createTestContext } from '../support/context'
import { environmentBody } from '../support/fixtures'

const ctx = await createTestContext()
for (const env of ['prod', 'staging']) await ctx.request('POST', '/api/v1/environment', environmentBody(env))
await ctx.request('POST', '/api/v1/serve', { name: 'fraud', type: 'api' })
await ctx.request('POST', '/api/v1/serve', { name: 'nightly', type: 'workflow' })

const api = { backend_type: 'fastapi', cores: 4, memory: 8, min_replicas: 2, max_replicas: 10, node_capacity_type: 'spot' }
const workflow = {
  schedule: '0 2 * * *',
  head_node_config: { cores: 2, memory: 4, node_capacity_type: 'ondemand' },
  worker_node_config: [{ cores_per_pods: 4, memory_per_pods: 16, min_pods: 1, max_pods: 4, node_capacity_type: 'spot' }],
}
const path = (serve: string, env: string) => `/api/v1/serve/${serve}/infra-config/${env}`
const paths = (response: { body: { errors?: { path: string }[] } }) => (response.body.errors ?? []).map((e) => e.path)

describe('infra config API — happy path', () => {
  test("POST with the seed's flat body: 201, defaults filled in, row in MySQL", async () => {
    const response = await ctx.request('POST', path('fraud', 'prod'), { api_serve_infra_config: api })
    expect(response.status).toBe(201)
    expect(response.body.data).toMatchObject({
      serve_name: 'fraud',
      env: 'prod',
      serve_type: 'api',
      api_serve_infra_config: { ...api, target_cpu_utilization: 70, additional_hosts: [] },
      workflow_serve_config: null,
    })
    const rows = await ctx.query('select backend_type, cores, memory, min_replicas, max_replicas, node_capacity_type, target_cpu_utilization from infra_configs')
    expect(rows).toEqual([
      { backend_type: 'fastapi', cores: 4, memory: 8, min_replicas: 2, max_replicas: 10, node_capacity_type: 'spot', target_cpu_utilization: 70 },
    ])
  })

  test("POST with the original's api_serve_config shape, fractional cores and extra hosts", async () => {
    const response = await ctx.request('POST', path('fraud', 'staging'), {
      api_serve_config: {
        backend_type: 'ray',
        additional_hosts: ['fraud.internal.example.com'],
        fast_api_config: { cores: 0.5, memory: 0.5, node_capacity_type: 'ondemand', min_replicas: 0, max_replicas: 1, target_cpu_utilization: 55 },
      },
    })
    expect(response.status).toBe(201)
    expect(response.body.data.api_serve_infra_config).toEqual({
      backend_type: 'ray',
      cores: 0.5,
      memory: 0.5,
      min_replicas: 0,
      max_replicas: 1,
      node_capacity_type: 'ondemand',
      target_cpu_utilization: 55,
      additional_hosts: ['fraud.internal.example.com'],
    })
  })

  test('a workflow serve takes workflow_serve_config', async () => {
    const response = await ctx.request('POST', path('nightly', 'prod'), { workflow_serve_config: workflow })
    expect(response.status).toBe(201)
    expect(response.body.data).toMatchObject({ serve_type: 'workflow', api_serve_infra_config: null, workflow_serve_config: workflow })
  })

  test('GET one and GET all environments (ordered by environment name)', async () => {
    const one = await ctx.request('GET', path('fraud', 'prod'))
    expect(one.status).toBe(200)
    expect(one.body.data.api_serve_infra_config.cores).toBe(4)
    const all = await ctx.request('GET', '/api/v1/serve/fraud/infra-config')
    expect(all.status).toBe(200)
    expect(all.body.data.map((c: { env: string }) => c.env)).toEqual(['prod', 'staging'])
  })

  test('PATCH merges the given fields and leaves the others alone (seed form, then original form)', async () => {
    const response = await ctx.request('PATCH', path('fraud', 'prod'), { api_serve_infra_config: { min_replicas: 5, max_replicas: 20, cores: 8, memory: 16 } })
    expect(response.status).toBe(200)
    expect(response.body.data.api_serve_infra_config).toEqual({ ...api, min_replicas: 5, max_replicas: 20, cores: 8, memory: 16, target_cpu_utilization: 70, additional_hosts: [] })
    const original = await ctx.request('PATCH', path('fraud', 'prod'), { api_serve_config: { fast_api_config: { node_capacity_type: 'ondemand' } } })
    expect(original.status).toBe(200)
    expect(original.body.data.api_serve_infra_config).toMatchObject({ node_capacity_type: 'ondemand', min_replicas: 5, backend_type: 'fastapi' })
  })

  test('PATCH of a workflow config: schedule replaced, head node merged', async () => {
    const response = await ctx.request('PATCH', path('nightly', 'prod'), { workflow_serve_config: { schedule: '30 3 * * 1', head_node_config: { cores: 3 } } })
    expect(response.status).toBe(200)
    expect(response.body.data.workflow_serve_config).toEqual({ ...workflow, schedule: '30 3 * * 1', head_node_config: { ...workflow.head_node_config, cores: 3 } })
  })

  test('an environment with infra configs cannot be deleted: 409 ENVIRONMENT_IN_USE', async () => {
    const response = await ctx.request('DELETE', '/api/v1/environment/staging')
    expect(response.status).toBe(409)
    expect(response.body.code).toBe('ENVIRONMENT_IN_USE')
    expect(await ctx.query("select id from environments where name = 'staging'")).toHaveLength(1)
  })
})

describe('infra config API — errors', () => {
  test('POST twice → 409, the stored config unchanged', async () => {
    const response = await ctx.request('POST', path('fraud', 'prod'), { api_serve_infra_config: { ...api, cores: 1 } })
    expect(response.status).toBe(409)
    expect(response.body.code).toBe('ALREADY_EXISTS')
    expect(await ctx.query('select cores from infra_configs where serve_id = (select id from serves where name = ?) and cores = 1', ['fraud'])).toHaveLength(0)
  })

  test('unknown serve, environment or config → 404', async () => {
    expect((await ctx.request('POST', path('nope', 'prod'), { api_serve_infra_config: api })).body.message).toBe('Serve with name nope not found')
    const unknownEnv = await ctx.request('POST', path('fraud', 'nope'), { api_serve_infra_config: api })
    expect(unknownEnv.status).toBe(404)
    expect(unknownEnv.body.message).toBe('Environment with name nope not found')
    await ctx.request('POST', '/api/v1/environment', environmentBody('dev'))
    for (const method of ['GET', 'PATCH']) {
      const response = await ctx.request(method, path('fraud', 'dev'), method === 'PATCH' ? { api_serve_infra_config: { cores: 1 } } : undefined)
      expect(response.status).toBe(404)
      expect(response.body.message).toBe('Infra config of serve fraud for environment dev not found')
    }
    expect((await ctx.request('GET', '/api/v1/serve/nope/infra-config')).status).toBe(404)
  })

  test.each([
    ['cores 0', { cores: 0 }, '/api_serve_infra_config/cores'],
    ['cores 65', { cores: 65 }, '/api_serve_infra_config/cores'],
    ['memory 513', { memory: 513 }, '/api_serve_infra_config/memory'],
    ['memory -1', { memory: -1 }, '/api_serve_infra_config/memory'],
    ['min_replicas -1', { min_replicas: -1 }, '/api_serve_infra_config/min_replicas'],
    ['max_replicas 101', { max_replicas: 101 }, '/api_serve_infra_config/max_replicas'],
    ['min above max', { min_replicas: 5, max_replicas: 3 }, '/api_serve_infra_config/min_replicas'],
    ['fractional replicas', { min_replicas: 1.5 }, '/api_serve_infra_config/min_replicas'],
    ['backend_type', { backend_type: 'flask' }, '/api_serve_infra_config/backend_type'],
    ['node_capacity_type', { node_capacity_type: 'reserved' }, '/api_serve_infra_config/node_capacity_type'],
    ['target_cpu_utilization 0', { target_cpu_utilization: 0 }, '/api_serve_infra_config/target_cpu_utilization'],
    ['target_cpu_utilization 101', { target_cpu_utilization: 101 }, '/api_serve_infra_config/target_cpu_utilization'],
    ['a bad host', { additional_hosts: ['Not A Host'] }, '/api_serve_infra_config/additional_hosts/0'],
    ['an unknown field', { gpus: 1 }, '/api_serve_infra_config'],
  ])('POST with %s → 422 naming the field', async (_label, change, field) => {
    const response = await ctx.request('POST', path('fraud', 'dev'), { api_serve_infra_config: { ...api, ...change } })
    expect(response.status).toBe(422)
    expect(paths(response).some((p) => p.startsWith(field))).toBe(true)
    expect(await ctx.query("select id from infra_configs where environment_id = (select id from environments where name = 'dev')")).toHaveLength(0)
  })

  test('a missing required field → 422 naming it', async () => {
    const { cores: _omitted, ...withoutCores } = api
    const response = await ctx.request('POST', path('fraud', 'dev'), { api_serve_infra_config: withoutCores })
    expect(response.status).toBe(422)
    expect(paths(response)).toContain('/api_serve_infra_config/cores')
  })

  test('PATCH re-validates the merged result: min above the stored max → 422 with the path, row unchanged', async () => {
    const response = await ctx.request('PATCH', path('fraud', 'prod'), { api_serve_infra_config: { min_replicas: 25 } })
    expect(response.status).toBe(422)
    expect(response.body.errors).toEqual([{ path: '/api_serve_infra_config/min_replicas', message: 'min_replicas (25) must not exceed max_replicas (20)' }])
    const original = await ctx.request('PATCH', path('fraud', 'prod'), { api_serve_config: { fast_api_config: { max_replicas: 2 } } })
    expect(original.status).toBe(422)
    expect(paths(original)).toEqual(['/api_serve_config/fast_api_config/min_replicas'])
    const [row] = await ctx.query<{ min_replicas: number; max_replicas: number }>(
      "select min_replicas, max_replicas from infra_configs where environment_id = (select id from environments where name = 'prod') and serve_id = (select id from serves where name = 'fraud')",
    )
    expect(row).toEqual({ min_replicas: 5, max_replicas: 20 })
  })

  test('a workflow config with min_pods above max_pods → 422 naming the worker', async () => {
    const response = await ctx.request('PATCH', path('nightly', 'prod'), {
      workflow_serve_config: { worker_node_config: [workflow.worker_node_config[0], { ...workflow.worker_node_config[0], min_pods: 9, max_pods: 2 }] },
    })
    expect(response.status).toBe(422)
    expect(paths(response)).toEqual(['/workflow_serve_config/worker_node_config/1/min_pods'])
    expect((await ctx.request('PATCH', path('nightly', 'prod'), { workflow_serve_config: { schedule: 'every night' } })).status).toBe(422)
  })

  test('the wrong config kind for the serve type → 422', async () => {
    const apiOnWorkflow = await ctx.request('POST', path('nightly', 'dev'), { api_serve_infra_config: api })
    expect(apiOnWorkflow.status).toBe(422)
    expect(paths(apiOnWorkflow)).toEqual(['/api_serve_infra_config'])
    const workflowOnApi = await ctx.request('PATCH', path('fraud', 'prod'), { workflow_serve_config: { schedule: '0 1 * * *' } })
    expect(workflowOnApi.status).toBe(422)
    expect(paths(workflowOnApi)).toEqual(['/workflow_serve_config'])
  })

  test('none, or two config forms at once → 422', async () => {
    expect((await ctx.request('POST', path('fraud', 'dev'), {})).status).toBe(422)
    const both = await ctx.request('PATCH', path('fraud', 'prod'), { api_serve_infra_config: { cores: 2 }, api_serve_config: { backend_type: 'ray' } })
    expect(both.status).toBe(422)
    expect(paths(both)).toEqual(['/'])
  })
})

describe('infra config API — the redeploy seam', () => {
  test('PATCH hands the merged, validated config to the hook, which alone stores it', async () => {
    const changes: InfraConfigChange[] = []
    // The deployment module passes its hook the same way; here on a bare app with auth off.
    const log = createLogger({ level: 'silent' })
    const app = new Elysia({ normalize: false })
      .use(httpConventions(log))
      .use(authPlugin({ verifyToken: async () => undefined, touchToken: async () => {}, enabled: false, log }))
      .group('/api/v1', (group) =>
        group.use(
          infraConfigController({ config: ctx.config, database: ctx.database, log, clusterDrivers: ctx.clusterDrivers }, { commitChange: async (change) => (changes.push(change), { revision: null }) }),
        ),
      )
    const response = await app.handle(
      new Request(`http://localhost${path('fraud', 'staging')}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ api_serve_infra_config: { max_replicas: 3 } }),
      }),
    )
    expect(response.status).toBe(200)
    expect(changes).toHaveLength(1)
    expect(changes[0]?.serve.name).toBe('fraud')
    expect(changes[0]?.environment.name).toBe('staging')
    expect(changes[0]?.next.maxReplicas).toBe(3)
    expect(changes[0]?.summary).toEqual({ env: 'staging', api_serve_infra_config: { max_replicas: 3 } })
    expect(((await response.json()) as { data: { started_revision: number | null } }).data.started_revision).toBeNull()
    // This hook stored nothing, so nothing changed: storing (and redeploying) is the placement's, in one step.
    const [row] = await ctx.query<{ max_replicas: number }>(
      "select max_replicas from infra_configs where environment_id = (select id from environments where name = 'staging')",
    )
    expect(row?.max_replicas).not.toBe(3)
  })
})
