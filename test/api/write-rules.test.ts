/**
 * A stored config is always deployable: what a cluster (or its controllers) would refuse is refused
 * when it is written, with a 422 naming the field — workflow schedules that never run, derived names
 * past their limits, min_replicas 0, max_surge and max_unavailable both 0, NUL in a variable, and more
 * variables than the manifests can carry — and nothing is stored or recorded.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { createTestContext } from '../support/context'
import { FakeKubernetes } from '../support/fake-kubernetes'
import { environmentBody } from '../support/fixtures'

const fake = new FakeKubernetes()
afterAll(() => fake.stop())
const settings = { ENV: 'prod', CLUSTER_REQUEST_ATTEMPTS: '1' }
const ctx = await createTestContext(settings, { clusterDrivers: fake.drivers(settings) })
const count = async (table: string) => Number((await ctx.query<{ n: number }>(`select count(*) as n from ${table}`))[0]?.n)
const worker = { cores_per_pods: 1, memory_per_pods: 2, min_pods: 0, max_pods: 2, node_capacity_type: 'spot' }
const workflow = (schedule: string) => ({ workflow_serve_config: { schedule, head_node_config: { cores: 1, memory: 2, node_capacity_type: 'spot' }, worker_node_config: [worker] } })
const api = { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 2, node_capacity_type: 'spot' }

await ctx.request('POST', '/api/v1/environment', environmentBody('prod', { namespace: 'ml' }))
await ctx.request('POST', '/api/v1/environment', environmentBody('e'.repeat(20), { namespace: 'ml' }))
await ctx.request('POST', '/api/v1/serve', { name: 'nightly', type: 'workflow', description: '', space: '' })
await ctx.request('POST', '/api/v1/serve', { name: 'w'.repeat(32), type: 'workflow', description: '', space: '' })
await ctx.request('POST', '/api/v1/serve', { name: 'r'.repeat(27), type: 'api', description: '', space: '' })
await ctx.request('POST', '/api/v1/serve', { name: 'fraud', type: 'api', description: '', space: '' })

describe('infra config', () => {
  test('a workflow schedule that is not cron, or never runs → 422 at /workflow_serve_config/schedule', async () => {
    for (const schedule of ['99 99 99 99 99', '0 0 31 2 *', '* * * * MON-FUNDAY']) {
      const response = await ctx.request('POST', '/api/v1/serve/nightly/infra-config/prod', workflow(schedule))
      expect({ schedule, status: response.status, path: response.body.errors?.[0]?.path }).toEqual({ schedule, status: 422, path: '/workflow_serve_config/schedule' })
    }
    expect(await count('infra_configs')).toBe(0)
    expect((await ctx.request('POST', '/api/v1/serve/nightly/infra-config/prod', workflow('*/15 2-4 * * MON-FRI'))).status).toBe(201)
    expect((await ctx.request('PATCH', '/api/v1/serve/nightly/infra-config/prod', { workflow_serve_config: { schedule: '0 0 30 2 *' } })).status).toBe(422)
  })

  test('a 32-character workflow serve in a 20-character environment: a 53-character CronJob → 422', async () => {
    const response = await ctx.request('POST', `/api/v1/serve/${'w'.repeat(32)}/infra-config/${'e'.repeat(20)}`, workflow('0 2 * * *'))
    expect(response.status).toBe(422)
    expect(response.body.errors[0]).toEqual({ path: '/params/serve_name', message: expect.stringContaining('Kubernetes allows 52') })
  })

  test('a ray serve whose RayService name would pass KubeRay\'s 47 characters → 422 at backend_type', async () => {
    const response = await ctx.request('POST', `/api/v1/serve/${'r'.repeat(27)}/infra-config/${'e'.repeat(20)}`, { api_serve_infra_config: { ...api, backend_type: 'ray' } })
    expect(response.status).toBe(422)
    expect(response.body.errors[0]).toEqual({ path: '/api_serve_infra_config/backend_type', message: expect.stringContaining('KubeRay allows 47') })
    expect((await ctx.request('POST', `/api/v1/serve/${'r'.repeat(27)}/infra-config/${'e'.repeat(20)}`, { api_serve_infra_config: api })).status).toBe(201)
  })

  test('min_replicas 0 → 422 (an autoscaler cannot scale to 0), on POST and PATCH', async () => {
    const response = await ctx.request('POST', '/api/v1/serve/fraud/infra-config/prod', { api_serve_infra_config: { ...api, min_replicas: 0 } })
    expect(response.status).toBe(422)
    expect(response.body.errors[0].path).toBe('/api_serve_infra_config/min_replicas')
    expect((await ctx.request('POST', '/api/v1/serve/fraud/infra-config/prod', { api_serve_infra_config: api })).status).toBe(201)
    expect((await ctx.request('PATCH', '/api/v1/serve/fraud/infra-config/prod', { api_serve_infra_config: { min_replicas: 0 } })).status).toBe(422)
  })
})

describe('deploy body', () => {
  const deploy = (config: Record<string, unknown>) => ctx.request('POST', '/api/v1/serve/fraud/deploy', { env: 'prod', artifact_version: 'v1', api_serve_deployment_config: config })

  test('max_surge 0 with max_unavailable 0, NUL in a variable, too many bytes of variables → 422, nothing recorded', async () => {
    await ctx.request('POST', '/api/v1/artifact', { serve_name: 'fraud', version: 'v1', image: 'registry.example.com/fraud:v1' })
    const stuck = await deploy({ deployment_strategy: 'rolling', max_surge: 0, max_unavailable: 0 })
    expect(stuck.status).toBe(422)
    expect(stuck.body.errors[0].path).toContain('max_unavailable')
    expect((await deploy({ environment_variables: { A: 'x\u0000y' } })).status).toBe(422)
    const big = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`V${i}`, 'x'.repeat(32 * 1024)]))
    const tooBig = await deploy({ environment_variables: big })
    expect(tooBig.status).toBe(422)
    expect(tooBig.body.errors[0]).toEqual({ path: '/deployment/environment_variables', message: expect.stringContaining('256 KiB') })
    expect(await count('deployments')).toBe(0)
  })
})
