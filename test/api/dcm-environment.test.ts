/**
 * An environment on DCM, against a fake DCM that answers in the real DTO shape: a deploy becomes active
 * and READY from the pods DCM reports; what DCM's chart cannot install (a workflow serve, a Ray serve,
 * Istio routing, an image by digest) is refused up front — at write time with 422/409, or at deploy with
 * a 422 before anything is recorded — never with a 502 at apply.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { createTestContext } from '../support/context'
import { FakeDcm } from '../support/fake-dcm'
import { environmentBody } from '../support/fixtures'

const dcm = new FakeDcm()
const settings = { ENV: 'prod', DCM_URL: dcm.url, CLUSTER_REQUEST_ATTEMPTS: '1', ROLLOUT_POLL_INTERVAL_MS: '50' }
const ctx = await createTestContext(settings)
const istio = await createTestContext({ ...settings, ENABLE_ISTIO: 'true' })
afterAll(() => dcm.stop())

const api = { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 2, max_replicas: 4, node_capacity_type: 'spot' }
const workflow = { schedule: '0 2 * * *', head_node_config: { cores: 1, memory: 2, node_capacity_type: 'spot' }, worker_node_config: [{ cores_per_pods: 1, memory_per_pods: 2, min_pods: 0, max_pods: 2, node_capacity_type: 'spot' }] }
const count = async (table: string) => Number((await ctx.query<{ n: number }>(`select count(*) as n from ${table}`))[0]?.n)

await ctx.request('POST', '/api/v1/environment', environmentBody('dcm-env', { namespace: 'ml', cluster_driver: 'dcm' }))
await ctx.request('POST', '/api/v1/environment', environmentBody('k8s-env', { namespace: 'ml' }))
for (const [name, type] of [['fraud', 'api'], ['nightly', 'workflow'], ['ranker', 'api']] as const) {
  await ctx.request('POST', '/api/v1/serve', { name, type, description: '', space: '' })
}

describe('write time: what DCM cannot install is refused', () => {
  test('a workflow serve in a DCM environment → 422 naming why, nothing stored', async () => {
    const response = await ctx.request('POST', '/api/v1/serve/nightly/infra-config/dcm-env', { workflow_serve_config: workflow })
    expect(response.status).toBe(422)
    expect(response.body.errors).toEqual([{ path: '/workflow_serve_config', message: expect.stringContaining('no template for a workflow serve') }])
    expect(await count('infra_configs')).toBe(0)
  })

  test('backend_type ray in a DCM environment → 422 at the field, in both body forms, on POST and PATCH', async () => {
    const flat = await ctx.request('POST', '/api/v1/serve/fraud/infra-config/dcm-env', { api_serve_infra_config: { ...api, backend_type: 'ray' } })
    expect(flat.status).toBe(422)
    expect(flat.body.errors[0]).toEqual({ path: '/api_serve_infra_config/backend_type', message: expect.stringContaining('no template for a Ray serve') })
    const { backend_type: _, ...fastApiConfig } = api
    const original = await ctx.request('POST', '/api/v1/serve/fraud/infra-config/dcm-env', { api_serve_config: { backend_type: 'ray', fast_api_config: fastApiConfig } })
    expect(original.body.errors[0].path).toBe('/api_serve_config/backend_type')
    expect((await ctx.request('POST', '/api/v1/serve/fraud/infra-config/dcm-env', { api_serve_infra_config: api })).status).toBe(201)
    const patched = await ctx.request('PATCH', '/api/v1/serve/fraud/infra-config/dcm-env', { api_serve_infra_config: { backend_type: 'ray' } })
    expect(patched.status).toBe(422)
    expect((await ctx.request('GET', '/api/v1/serve/fraud/infra-config/dcm-env')).body.data.api_serve_infra_config.backend_type).toBe('fastapi')
  })

  test('switching an environment to DCM while it holds a ray or workflow config → 409 naming them', async () => {
    await ctx.request('POST', '/api/v1/serve/ranker/infra-config/k8s-env', { api_serve_infra_config: { ...api, backend_type: 'ray' } })
    await ctx.request('POST', '/api/v1/serve/nightly/infra-config/k8s-env', { workflow_serve_config: workflow })
    const response = await ctx.request('PATCH', '/api/v1/environment/k8s-env', { environment_configs: { cluster_driver: 'dcm' } })
    expect(response.status).toBe(409)
    expect(response.body.code).toBe('DCM_UNSUPPORTED')
    expect(response.body.message).toContain('ranker (backend_type ray)')
    expect(response.body.message).toContain('nightly (a workflow serve)')
    expect((await ctx.request('GET', '/api/v1/environment/k8s-env')).body.data.environment_configs.cluster_driver).toBe('kubernetes')
  })

  test('with ENABLE_ISTIO: an environment on DCM → 409 (the chart has no Istio route); an infra config in one → 409', async () => {
    const created = await istio.request('POST', '/api/v1/environment', environmentBody('dcm-env', { cluster_driver: 'dcm' }))
    expect(created.status).toBe(409)
    expect(created.body.code).toBe('DCM_UNSUPPORTED')
    expect(created.body.message).toContain('ENABLE_ISTIO')
    await istio.request('POST', '/api/v1/environment', environmentBody('k8s-env'))
    expect((await istio.request('PATCH', '/api/v1/environment/k8s-env', { cluster_driver: 'dcm' })).status).toBe(409)
    // One stored before ENABLE_ISTIO was switched on (written here directly) is refused at its next write.
    await istio.query("update environments set cluster_driver = 'dcm' where name = 'k8s-env'")
    await istio.request('POST', '/api/v1/serve', { name: 'fraud', type: 'api', description: '', space: '' })
    const infra = await istio.request('POST', '/api/v1/serve/fraud/infra-config/k8s-env', { api_serve_infra_config: api })
    expect(infra.status).toBe(409)
    expect(infra.body.code).toBe('DCM_UNSUPPORTED')
  })
})

describe('a deploy through DCM', () => {
  test('becomes active and READY from the pods DCM reports (data.status.pods)', async () => {
    await ctx.request('POST', '/api/v1/artifact', { serve_name: 'fraud', version: 'v1', image: 'registry.example.com/fraud:v1' })
    const deployed = await ctx.request('POST', '/api/v1/serve/fraud/deploy?wait=20', { env: 'dcm-env', artifact_version: 'v1' })
    expect(deployed.status).toBe(200)
    expect(deployed.body.data.status).toBe('active')
    expect(dcm.pods.get('dcm-env-fraud')?.map((pod) => pod.status)).toEqual(['Running', 'Running'])
    const values = dcm.artifacts.get('dcm-env-fraud')!.values as any
    expect([values.hpa.cpu, values.ingressInt.ingressClass, values.replicaCount, values.hpa.maxReplicas]).toEqual([70, 'alb', 2, 4])
    expect((await ctx.request('GET', '/api/v1/serve/fraud/status/dcm-env')).body.data.status).toBe('READY')
  })

  test('while the new pods are not ready: deploying and NOT_READY; then active and READY', async () => {
    dcm.rollout = 'hold'
    try {
      const deployed = await ctx.request('POST', '/api/v1/serve/fraud/deploy', { env: 'dcm-env', artifact_version: 'v1', api_serve_deployment_config: { environment_variables: { MODE: 'b' } } })
      expect(deployed.status).toBeLessThan(300)
      await ctx.deployment.tracker.tick()
      expect((await ctx.request('GET', '/api/v1/serve/fraud/status/dcm-env')).body.data.status).toBe('NOT_READY')
      const current = await ctx.request('GET', '/api/v1/serve/fraud/deployment/dcm-env')
      // The old pods still run, and would look complete: the new template's are not ready yet.
      expect(current.body.data.in_flight.status).toBe('deploying')
      expect(current.body.data.rollout).toMatchObject({ phase: 'progressing', desired_replicas: 2, ready_replicas: 0, failure_reason: 'Containers are not ready' })
      dcm.finishRollout('dcm-env-fraud')
      await ctx.deployment.tracker.tick()
      expect((await ctx.request('GET', '/api/v1/serve/fraud/status/dcm-env')).body.data.status).toBe('READY')
      expect((await ctx.request('GET', '/api/v1/serve/fraud/deployment/dcm-env')).body.data.active.status).toBe('active')
    } finally {
      dcm.rollout = 'instant'
    }
  })

  test('an image by digest → 422 at deploy naming the image (the chart puts the tag in a label), nothing recorded', async () => {
    const before = await count('deployments')
    const artifact = await ctx.request('POST', '/api/v1/artifact', { serve_name: 'fraud', version: 'v2', image: `registry.example.com/fraud@sha256:${'a'.repeat(64)}` })
    expect(artifact.status).toBe(201)
    const response = await ctx.request('POST', '/api/v1/serve/fraud/deploy', { env: 'dcm-env', artifact_version: 'v2' })
    expect(response.status).toBe(422)
    expect(response.body.errors[0]).toEqual({ path: '/artifact/image', message: expect.stringContaining('tags.datadoghq.com/version') })
    expect(await count('deployments')).toBe(before)
  })
})
