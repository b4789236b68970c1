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

beforeEach(() => fake.reset())
const calls = () => fake.requests.map((r) => `${r.method} ${r.path}`)

describe('DCM driver', () => {
  test('apply reads the pods, registers chart and values, then starts the resource {env}-{serve} on the env cluster', async () => {
    const rendered = renderServe(input(), settings)
    await dcm().apply(target, rendered)
    expect(calls()).toEqual(['POST /resource-instance/status', 'POST /resource-instance/', 'POST /resource-instance/start'])
    expect(fake.requests[1]?.body).toEqual({ darwin_resource: 'darwin-fastapi-serve', values: rendered.dcm!.values, version: 'v1', artifact_id: 'prod-fraud' })
    expect(fake.requests[2]?.body).toEqual({ resource_id: 'prod-fraud', kube_cluster: 'prod-k8s', kube_namespace: 'ml', artifact_id: 'prod-fraud', darwin_resource: 'darwin-fastapi-serve' })
    expect(await dcm().status(target)).toMatchObject({ phase: 'complete', desiredReplicas: 1, readyReplicas: 1, availableReplicas: 1 })
  })

  test('a second apply registers again (DCM replaces the artifact); a 409 from DCM falls back to patching the values', async () => {
    await dcm().apply(target, renderServe(input(), settings))
    fake.requests.length = 0
    await dcm().apply(target, renderServe(input(6), settings))
    expect(calls()).toEqual(['POST /resource-instance/status', 'POST /resource-instance/', 'POST /resource-instance/start'])
    expect((fake.artifacts.get('prod-fraud')?.values.hpa as { maxReplicas: number }).maxReplicas).toBe(6)
    fake.requests.length = 0
    fake.failNext({ path: '/resource-instance/', status: 409, message: 'exists' })
    await dcm().apply(target, renderServe(input(7), settings))
    expect(calls()).toEqual(['POST /resource-instance/status', 'POST /resource-instance/', 'PATCH /resource-instance/values', 'POST /resource-instance/start'])
    expect((fake.artifacts.get('prod-fraud')?.values.hpa as { maxReplicas: number }).maxReplicas).toBe(7)
  })

  test('status reads data.status.pods (the real DTO): absent without pods, progressing until the new template runs, then complete', async () => {
    expect(await dcm().status(target)).toMatchObject({ phase: 'absent', readyReplicas: 0 })
    const driver = dcm()
    await driver.apply(target, renderServe({ ...input(), infra: { ...input().infra, min_replicas: 2, max_replicas: 4 } }, settings))
    expect(await driver.status(target)).toMatchObject({ phase: 'complete', desiredReplicas: 2, readyReplicas: 2, updatedReplicas: 2 })
    fake.rollout = 'hold'
    const next = input(5)
    await driver.apply(target, renderServe({ ...next, infra: { ...next.infra, min_replicas: 2 }, deployment: { ...next.deployment, revision: 2 } }, settings))
    const during = await driver.status(target)
    // Old pods still run (and would look complete): the new template's are Pending, "Containers are not ready".
    expect(during).toMatchObject({ phase: 'progressing', desiredReplicas: 2, readyReplicas: 0, failureReason: 'Containers are not ready' })
    expect(during.conditions).toContainEqual(expect.objectContaining({ type: 'PodNotReady', status: 'Pending' }))
    fake.finishRollout('prod-fraud')
    expect(await driver.status(target)).toMatchObject({ phase: 'complete', desiredReplicas: 2, readyReplicas: 2 })
  })

  test('the MLflow password is added to envs at apply time only: never in the rendered (stored) values', async () => {
    const rendered = renderServe({ ...input(), mlflow: { tracking_uri: 'https://mlflow.example.com', username: 'svc' } }, settings)
    expect(rendered.dcm?.passwordEnv).toBe('MLFLOW_TRACKING_PASSWORD')
    expect(JSON.stringify(rendered)).not.toContain('s3cret')
    await dcm().apply(target, rendered, { mlflowPassword: 's3cret' })
    const envs = fake.artifacts.get('prod-fraud')!.values.envs as Record<string, string>
    expect(envs).toMatchObject({ MLFLOW_TRACKING_URI: 'https://mlflow.example.com', MLFLOW_TRACKING_USERNAME: 'svc', MLFLOW_TRACKING_PASSWORD: 's3cret' })
    expect((rendered.dcm!.values.envs as Record<string, string>).MLFLOW_TRACKING_PASSWORD).toBeUndefined()
  })

  test('setAutoscalingBounds patches replicaCount and hpa.maxReplicas only, then starts', async () => {
    await dcm().apply(target, renderServe(input(), settings))
    fake.requests.length = 0
    await dcm().setAutoscalingBounds(target, { min: 2, max: 8 })
    expect(fake.requests[0]).toEqual({ method: 'PATCH', path: '/resource-instance/values', body: { values: { replicaCount: 2, hpa: { maxReplicas: 8 } }, artifact_id: 'prod-fraud', darwin_resource: 'darwin-fastapi-serve' } })
    expect((fake.artifacts.get('prod-fraud')!.values.hpa as { cpu: number }).cpu).toBe(70)
    expect(fake.requests[1]?.path).toBe('/resource-instance/start')
    const values = fake.artifacts.get('prod-fraud')!.values
    expect([values.replicaCount, (values.hpa as { maxReplicas: number }).maxReplicas, values.name]).toEqual([2, 8, 'fraud-prod'])
  })

  test('remove stops the resource; status is then absent; removing again succeeds (as DCM answers); a 404 counts as gone', async () => {
    await dcm().apply(target, renderServe(input(), settings))
    await dcm().remove(target)
    expect(fake.requests.at(-1)).toEqual({ method: 'POST', path: '/resource-instance/stop', body: { resource_id: 'prod-fraud', kube_cluster: 'prod-k8s', kube_namespace: 'ml' } })
    expect((await dcm().status(target)).phase).toBe('absent')
    await dcm().remove(target)
    fake.failNext({ path: '/resource-instance/stop', status: 404, message: 'release: not found' })
    await dcm().remove(target)
  })

  test('a status that is not the DTO is an unavailable DCM, not a silent "absent"', async () => {
    const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => Response.json({ status: 'SUCCESS', data: { status: 'running' } }) })
    try {
      const driver = new DcmDriver({ url: `http://127.0.0.1:${server.port}`, requestTimeoutMs: 1_000, retry: { attempts: 1, backoffMs: 1 } })
      expect(await driver.status(target).catch((e) => e)).toMatchObject({ kind: 'unavailable' })
    } finally {
      server.stop(true)
    }
  })

  test('failures are typed with DCM message; 5xx retried; slowness times out', async () => {
    fake.failNext({ status: 403, message: 'not allowed on prod-k8s' })
    expect(await dcm().apply(target, renderServe(input(), settings)).catch((e) => e)).toMatchObject({ kind: 'forbidden', httpStatus: 403, message: 'not allowed on prod-k8s' })
    fake.failNext({ status: 503, message: 'helm busy', times: 2 })
    await dcm().apply(target, renderServe(input(), settings))
    expect(fake.pods.get('prod-fraud')?.map((pod) => pod.status)).toEqual(['Running'])
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
