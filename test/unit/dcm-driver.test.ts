import { afterAll, beforeEach, describe, expect, test } from 'bun:test'
import { DcmDriver } from '../../src/cluster/dcm'
import { ClusterError, type ClusterTarget } from '../../src/cluster/driver'
import { loadConfig } from '../../src/config'
import { type RenderInput, renderServe } from '../../src/render'
import { FakeDcm } from '../support/fake-dcm'

const fake = new FakeDcm()
afterAll(() => fake.stop())
const dcm = (timeoutMs = 2_000, attempts = 3) => new DcmDriver({ url: fake.url, requestTimeoutMs: timeoutMs, retry: { attempts, backoffMs: 1 } })

const target: ClusterTarget = { serve: 'fraud', environment: { name: 'prod', namespace: 'ml', cluster_name: 'prod-k8s', cluster_driver: 'dcm', kube_context: '' } }
const input = (maxReplicas = 3): RenderInput => ({
  serve: { name: 'fraud', type: 'api', description: 'Fraud' },
  environment: { name: 'prod', domain_suffix: '.example.com', namespace: 'ml', cluster_name: 'prod-k8s', security_group: '', subnets: '', workflow_url: '' },
  infra: { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: maxReplicas, node_capacity_type: 'ondemand' },
  artifact: { version: 'v1', image: 'img:v1' },
  deployment: { strategy: 'rolling', environment_variables: {} },
})
const settings = loadConfig({ ENV: 'prod', ENABLE_OTEL: 'false' })

beforeEach(() => {
  fake.requests.length = 0
  fake.artifacts.clear()
  fake.running.clear()
})

describe('DCM driver', () => {
  test('apply registers chart and values, then starts the resource {env}-{serve} on the env cluster', async () => {
    const rendered = renderServe(input(), settings)
    await dcm().apply(target, rendered)
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /resource-instance/', 'POST /resource-instance/start'])
    expect(fake.requests[0]?.body).toEqual({ darwin_resource: 'darwin-fastapi-serve', values: rendered.dcm!.values, version: 'v1', artifact_id: 'prod-fraud' })
    expect(fake.requests[1]?.body).toEqual({ resource_id: 'prod-fraud', kube_cluster: 'prod-k8s', kube_namespace: 'ml', artifact_id: 'prod-fraud', darwin_resource: 'darwin-fastapi-serve' })
    expect(await dcm().status(target)).toMatchObject({ phase: 'complete', conditions: [{ type: 'DcmStatus', status: 'running' }] })
  })

  test('a second apply patches the values of the registered resource', async () => {
    await dcm().apply(target, renderServe(input(), settings))
    fake.requests.length = 0
    await dcm().apply(target, renderServe(input(6), settings))
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /resource-instance/', 'PATCH /resource-instance/values', 'POST /resource-instance/start'])
    expect((fake.artifacts.get('prod-fraud')?.values.hpa as { maxReplicas: number }).maxReplicas).toBe(6)
  })

  test('setAutoscalingBounds patches replicaCount and hpa.maxReplicas only, then starts', async () => {
    await dcm().apply(target, renderServe(input(), settings))
    fake.requests.length = 0
    await dcm().setAutoscalingBounds(target, { min: 2, max: 8 })
    expect(fake.requests[0]).toEqual({ method: 'PATCH', path: '/resource-instance/values', body: { values: { replicaCount: 2, hpa: { maxReplicas: 8 } }, artifact_id: 'prod-fraud', darwin_resource: 'darwin-fastapi-serve' } })
    expect(fake.requests[1]?.path).toBe('/resource-instance/start')
    const values = fake.artifacts.get('prod-fraud')!.values
    expect([values.replicaCount, (values.hpa as { maxReplicas: number }).maxReplicas, values.name]).toEqual([2, 8, 'fraud-prod'])
  })

  test('remove stops the resource; status is then absent; removing again succeeds', async () => {
    await dcm().apply(target, renderServe(input(), settings))
    await dcm().remove(target)
    expect(fake.requests.at(-1)).toEqual({ method: 'POST', path: '/resource-instance/stop', body: { resource_id: 'prod-fraud', kube_cluster: 'prod-k8s', kube_namespace: 'ml' } })
    expect((await dcm().status(target)).phase).toBe('absent')
    await dcm().remove(target)
  })

  test('failures are typed with DCM message; 5xx retried; slowness times out', async () => {
    fake.failNext({ status: 403, message: 'not allowed on prod-k8s' })
    expect(await dcm().apply(target, renderServe(input(), settings)).catch((e) => e)).toMatchObject({ kind: 'forbidden', httpStatus: 403, message: 'not allowed on prod-k8s' })
    fake.failNext({ status: 503, message: 'helm busy', times: 2 })
    await dcm().apply(target, renderServe(input(), settings))
    expect(fake.running.get('prod-fraud')).toBe('running')
    fake.setDelay(1_000)
    try {
      const error = await dcm(100, 1).status(target).catch((e) => e)
      expect(error).toBeInstanceOf(ClusterError)
      expect(error.kind).toBe('timeout')
    } finally {
      fake.setDelay(0)
    }
  })

  test('a workflow serve is refused: DCM has no chart for it', async () => {
    const workflow = renderServe({ ...input(), serve: { name: 'fraud', type: 'workflow', description: '' }, workflow: { schedule: '@daily' } }, settings)
    expect(await dcm().apply(target, workflow).catch((e) => e)).toMatchObject({ kind: 'rejected' })
    expect(fake.requests).toEqual([])
  })
})
