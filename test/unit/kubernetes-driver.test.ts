import { afterAll, beforeEach, describe, expect, test } from 'bun:test'
import { ClusterError, type ClusterTarget } from '../../src/cluster/driver'
import { KubernetesDriver } from '../../src/cluster/kubernetes'
import { loadConfig } from '../../src/config'
import { type RenderInput, renderServe } from '../../src/render'
import { FakeKubernetes } from '../support/fake-kubernetes'

const fake = new FakeKubernetes()
afterAll(() => fake.stop())

const driver = (timeoutMs = 2_000, attempts = 3) =>
  new KubernetesDriver({ requestTimeoutMs: timeoutMs, retry: { attempts, backoffMs: 1 }, kubeConfigFor: () => fake.kubeConfig() })

const target: ClusterTarget = {
  serve: 'fraud',
  environment: { name: 'prod', namespace: 'ml', cluster_name: 'prod-k8s', cluster_driver: 'kubernetes', kube_context: '' },
}

const input = (variables: Record<string, string> = { A: '1' }): RenderInput => ({
  serve: { name: 'fraud', type: 'api', description: 'Fraud' },
  environment: { name: 'prod', domain_suffix: '.example.com', namespace: 'ml', cluster_name: 'prod-k8s', security_group: '', subnets: '', workflow_url: '' },
  infra: { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 3, node_capacity_type: 'spot' },
  artifact: { version: 'v1', image: 'img:v1' },
  deployment: { strategy: 'rolling', environment_variables: variables },
  mlflow: { tracking_uri: 'https://mlflow' },
})
const settings = (env: Record<string, string> = {}) => loadConfig({ ENV: 'prod', ENABLE_OTEL: 'false', ...env })

beforeEach(async () => {
  await driver().remove(target)
  fake.clearRequests()
})

describe('apply', () => {
  test('creates every object by server-side apply with our field manager; the Secret holds the password', async () => {
    const result = await driver().apply(target, renderServe(input(), settings()), { mlflowPassword: 's3cret' })
    expect(result.applied).toEqual(['Secret/fraud-prod-mlflow', 'Service/fraud-prod', 'Deployment/fraud-prod', 'HorizontalPodAutoscaler/fraud-prod', 'Ingress/fraud-prod'])
    const patches = fake.requests.filter((r) => r.method === 'PATCH')
    expect(patches.map((r) => r.path)).toEqual([
      '/api/v1/namespaces/ml/secrets/fraud-prod-mlflow',
      '/api/v1/namespaces/ml/services/fraud-prod',
      '/apis/apps/v1/namespaces/ml/deployments/fraud-prod',
      '/apis/autoscaling/v2/namespaces/ml/horizontalpodautoscalers/fraud-prod',
      '/apis/networking.k8s.io/v1/namespaces/ml/ingresses/fraud-prod',
    ])
    for (const patch of patches) {
      expect(patch.contentType).toBe('application/apply-patch+yaml')
      expect(patch.query).toEqual({ fieldManager: 'darwin-ml-serve', force: 'true' })
    }
    expect((fake.get('Secret', 'ml', 'fraud-prod-mlflow')?.stringData as Record<string, string>).password).toBe('s3cret')
    const deployment = fake.get('Deployment', 'ml', 'fraud-prod') as any
    expect(deployment.spec.template.spec.containers[0].image).toBe('img:v1')
    expect(JSON.stringify(deployment)).not.toContain('s3cret')
  })

  test('a second apply with one change updates only what changed', async () => {
    await driver().apply(target, renderServe(input(), settings()))
    const before = Object.fromEntries(fake.list().map((o) => [`${o.kind}/${o.metadata.name}`, o.metadata.resourceVersion]))
    await driver().apply(target, renderServe(input({ A: '2' }), settings()))
    const after = Object.fromEntries(fake.list().map((o) => [`${o.kind}/${o.metadata.name}`, o.metadata.resourceVersion]))
    const changed = Object.keys(after).filter((id) => after[id] !== before[id])
    expect(changed).toEqual(['Deployment/fraud-prod'])
    expect((fake.get('Deployment', 'ml', 'fraud-prod') as any).spec.template.spec.containers[0].env).toContainEqual({ name: 'A', value: '2' })
  })

  test('an Ingress the new render drops (Istio turned on) is pruned; the managed Secret is kept', async () => {
    await driver().apply(target, renderServe(input(), settings()), { mlflowPassword: 'pw' })
    expect(fake.get('Ingress', 'ml', 'fraud-prod')).toBeDefined()
    const result = await driver().apply(target, renderServe(input(), settings({ ENABLE_ISTIO: 'true' })))
    expect(result.pruned).toEqual(['Ingress/fraud-prod'])
    expect(fake.get('Ingress', 'ml', 'fraud-prod')).toBeUndefined()
    expect(fake.get('VirtualService', 'ml', 'fraud-prod')).toBeDefined()
    expect(fake.get('Secret', 'ml', 'fraud-prod-mlflow')).toBeDefined()
    const lists = fake.requests.filter((r) => r.method === 'GET' && r.query.labelSelector)
    expect(lists[0]?.query.labelSelector).toBe('app.kubernetes.io/managed-by=darwin-ml-serve,darwin.ml-serve/serve=fraud,darwin.ml-serve/environment=prod')
  })

  test('objects of another serve are never pruned', async () => {
    fake.put({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'other-prod', namespace: 'ml', labels: { 'app.kubernetes.io/managed-by': 'darwin-ml-serve', 'darwin.ml-serve/serve': 'other', 'darwin.ml-serve/environment': 'prod' } } })
    await driver().apply(target, renderServe(input(), settings()))
    expect(fake.get('Service', 'ml', 'other-prod')).toBeDefined()
  })
})

describe('status', () => {
  test('absent, then progressing, then complete as the Deployment rolls out', async () => {
    const k8s = driver()
    expect((await k8s.status(target)).phase).toBe('absent')
    await k8s.apply(target, renderServe(input(), settings()))
    const deployment = fake.get('Deployment', 'ml', 'fraud-prod')!
    fake.setStatus('Deployment', 'ml', 'fraud-prod', { observedGeneration: deployment.metadata.generation, replicas: 2, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 })
    ;(deployment.spec as { replicas?: number }).replicas = 2
    const progressing = await k8s.status(target)
    expect(progressing).toMatchObject({ phase: 'progressing', desiredReplicas: 2, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 })
    fake.setStatus('Deployment', 'ml', 'fraud-prod', {
      observedGeneration: deployment.metadata.generation,
      replicas: 2,
      updatedReplicas: 2,
      readyReplicas: 2,
      availableReplicas: 2,
      conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }],
    })
    expect(await k8s.status(target)).toEqual({
      phase: 'complete',
      desiredReplicas: 2,
      updatedReplicas: 2,
      readyReplicas: 2,
      availableReplicas: 2,
      conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }],
    })
  })

  test('a pod in ImagePullBackOff and a passed progress deadline are reported', async () => {
    const k8s = driver()
    await k8s.apply(target, renderServe(input(), settings()))
    fake.setStatus('Deployment', 'ml', 'fraud-prod', { observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 0, conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'ReplicaSet has timed out progressing.' }] })
    fake.put({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'fraud-prod-abc', namespace: 'ml', labels: { 'app.kubernetes.io/instance': 'fraud-prod' } }, status: { containerStatuses: [{ state: { waiting: { reason: 'ImagePullBackOff' } } }] } })
    const status = await k8s.status(target)
    expect(status.phase).toBe('failed')
    expect(status.failureReason).toBe('ImagePullBackOff')
    expect(status.conditions[0]).toEqual({ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'ReplicaSet has timed out progressing.' })
    // The pod recovers from its image pull: the deadline is what is left to report.
    fake.put({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'fraud-prod-abc', namespace: 'ml', labels: { 'app.kubernetes.io/instance': 'fraud-prod' } }, status: {} })
    expect((await k8s.status(target)).failureReason).toBe('ProgressDeadlineExceeded')
  })

  test('a spec applied after a passed deadline is progressing until the controller has observed it', async () => {
    const k8s = driver()
    await k8s.apply(target, renderServe(input(), settings()))
    const failed = { observedGeneration: 1, replicas: 1, updatedReplicas: 0, availableReplicas: 0, conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }] }
    fake.setStatus('Deployment', 'ml', 'fraud-prod', failed)
    expect((await k8s.status(target)).phase).toBe('failed')
    // The next spec (an automatic rollback): generation 2, the status still the first one's.
    await k8s.apply(target, renderServe(input({ B: '2' }), settings()))
    expect(fake.get('Deployment', 'ml', 'fraud-prod')?.metadata.generation).toBe(2)
    expect((await k8s.status(target)).phase).toBe('progressing')
  })
})

describe('autoscaling bounds', () => {
  test('only the HPA min/max change, by merge patch', async () => {
    const k8s = driver()
    await k8s.apply(target, renderServe(input(), settings()))
    const deploymentVersion = fake.get('Deployment', 'ml', 'fraud-prod')!.metadata.resourceVersion
    fake.clearRequests()
    await k8s.setAutoscalingBounds(target, { min: 4, max: 9 })
    const hpa = fake.get('HorizontalPodAutoscaler', 'ml', 'fraud-prod') as any
    expect([hpa.spec.minReplicas, hpa.spec.maxReplicas]).toEqual([4, 9])
    expect(hpa.spec.scaleTargetRef.name).toBe('fraud-prod')
    expect(fake.get('Deployment', 'ml', 'fraud-prod')!.metadata.resourceVersion).toBe(deploymentVersion)
    expect(fake.requests.filter((r) => r.method === 'PATCH').map((r) => r.contentType)).toEqual(['application/merge-patch+json'])
  })
})

describe('failures', () => {
  test('403 comes back as forbidden with the API server message, without retries', async () => {
    fake.failNext({ method: 'PATCH', status: 403, message: 'deployments.apps is forbidden: User "ci" cannot patch resource' })
    const error = await driver().apply(target, renderServe(input(), settings())).catch((e) => e)
    expect(error).toBeInstanceOf(ClusterError)
    expect(error).toMatchObject({ kind: 'forbidden', httpStatus: 403, message: 'deployments.apps is forbidden: User "ci" cannot patch resource' })
    expect(fake.requests.filter((r) => r.method === 'PATCH').length).toBe(1)
  })

  test('409 is a conflict; 422 is rejected', async () => {
    fake.failNext({ method: 'PATCH', status: 409, message: 'Apply failed with 1 conflict' })
    expect(await driver().apply(target, renderServe(input(), settings())).catch((e) => e)).toMatchObject({ kind: 'conflict', httpStatus: 409, message: 'Apply failed with 1 conflict' })
    fake.failNext({ method: 'PATCH', status: 422, message: 'Deployment.apps "fraud-prod" is invalid' })
    expect(await driver().apply(target, renderServe(input(), settings())).catch((e) => e)).toMatchObject({ kind: 'rejected', httpStatus: 422 })
  })

  test('500 is retried and succeeds; persistent 500 is unavailable after the attempts', async () => {
    fake.failNext({ method: 'PATCH', status: 500, message: 'etcdserver: leader changed', times: 2 })
    await driver().apply(target, renderServe(input(), settings()))
    expect(fake.get('Deployment', 'ml', 'fraud-prod')).toBeDefined()
    fake.failNext({ method: 'PATCH', status: 500, message: 'etcdserver: leader changed', times: 3 })
    fake.clearRequests()
    const error = await driver().apply(target, renderServe(input(), settings())).catch((e) => e)
    expect(error).toMatchObject({ kind: 'unavailable', httpStatus: 500, message: 'etcdserver: leader changed' })
    expect(fake.requests.filter((r) => r.method === 'PATCH').length).toBe(3)
  })

  test('a slow API server times out', async () => {
    fake.setDelay(1_000)
    try {
      const error = await driver(100, 1).status(target).catch((e) => e)
      expect(error).toBeInstanceOf(ClusterError)
      expect(error.kind).toBe('timeout')
    } finally {
      fake.setDelay(0)
    }
  })

  test('an unreachable server is unavailable', async () => {
    const gone = new FakeKubernetes()
    const kc = gone.kubeConfig()
    gone.stop()
    const unreachable = new KubernetesDriver({ requestTimeoutMs: 1_000, retry: { attempts: 2, backoffMs: 1 }, kubeConfigFor: () => kc })
    expect(await unreachable.status(target).catch((e) => e)).toMatchObject({ kind: 'unavailable' })
  })
})

describe('a TLS API server (a private CA and client certificates, as kind, EKS and most clusters have)', () => {
  const secure = new FakeKubernetes({ tls: true })
  afterAll(() => secure.stop())
  const driverFor = (kubeConfig: () => ReturnType<FakeKubernetes['kubeConfig']>) =>
    new KubernetesDriver({ requestTimeoutMs: 5_000, retry: { attempts: 1, backoffMs: 1 }, kubeConfigFor: kubeConfig })

  test("apply, status and remove use the kubeconfig's CA and client certificate", async () => {
    const tls = driverFor(() => secure.kubeConfig())
    const result = await tls.apply(target, renderServe(input(), settings()), { mlflowPassword: 'pw' })
    expect(result.applied).toContain('Deployment/fraud-prod')
    expect(secure.get('Deployment', 'ml', 'fraud-prod')).toBeDefined()
    expect((await tls.status(target)).phase).toBe('progressing')
    await tls.remove(target)
    expect(secure.list().filter((o) => o.metadata.name.startsWith('fraud-prod'))).toEqual([])
  })

  test('without the CA the server is not trusted; without the client certificate the handshake fails', async () => {
    const noCa = secure.kubeConfig()
    noCa.clusters = noCa.clusters.map((c) => ({ ...c, caData: undefined }))
    const untrusted = await driverFor(() => noCa).status(target).catch((e) => e)
    expect(untrusted).toBeInstanceOf(ClusterError)
    expect(untrusted.message).toMatch(/certificate/i)
    const noCert = secure.kubeConfig()
    noCert.users = noCert.users.map((u) => ({ name: u.name, token: 't' }))
    const anonymous = await driverFor(() => noCert).status(target).catch((e) => e)
    expect(anonymous).toBeInstanceOf(ClusterError)
    expect(secure.list()).toEqual([])
  })
})
