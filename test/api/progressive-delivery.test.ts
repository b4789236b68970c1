/**
 * Progressive delivery (README "Progressive delivery"): automatic rollback of a failed rollout, and
 * canary releases stepped by the rollout tracker, driven tick by tick against MySQL and the fake
 * Kubernetes API, whose pods' readiness and restart counts the tests set (`fake.runPods`).
 */
import { afterAll, beforeEach, describe, expect, test } from 'bun:test'
import { createDeploymentRuntime } from '../../src/modules/deployment'
import { createTestContext, type TestContext } from '../support/context'
import { FakeKubernetes, type StoredObject } from '../support/fake-kubernetes'
import { environmentBody } from '../support/fixtures'

const NS = 'ml'
const fake = new FakeKubernetes()
afterAll(() => fake.stop())
// ENV=prod keeps prod's rules (auth on); the rate limits are off: these tests make many changes in a minute.
const settings = { ENV: 'prod', CLUSTER_REQUEST_ATTEMPTS: '1', CLUSTER_REQUEST_TIMEOUT_MS: '1000', ROLLOUT_POLL_INTERVAL_MS: '50', RATE_LIMIT_PER_TOKEN: '0', RATE_LIMIT_PER_IP: '0' }
const ctx = await createTestContext(settings, { clusterDrivers: fake.drivers(settings) })
await ctx.request('POST', '/api/v1/environment', environmentBody('prod', { namespace: NS }))

const infra = { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 2, max_replicas: 10, node_capacity_type: 'spot' }
async function setUpServe(c: TestContext, name: string) {
  expect((await c.request('POST', '/api/v1/serve', { name, type: 'api' })).status).toBe(201)
  expect((await c.request('POST', `/api/v1/serve/${name}/infra-config/prod`, { api_serve_infra_config: infra })).status).toBe(201)
  for (const version of ['v1', 'v2', 'v3']) {
    expect((await c.request('POST', '/api/v1/artifact', { serve_name: name, version, image: `registry.example.com/${name}:${version}` })).status).toBe(201)
  }
}

interface Row {
  revision: number
  status: string
  reason: string
  failure_reason: string | null
  rolled_back_from: number | null
  rolled_back_to: number | null
  removed_at: Date | null
}
const revisions = (c: TestContext, serve: string) =>
  c.query<Row>(
    'select d.revision, d.status, d.reason, d.failure_reason, d.rolled_back_from, d.rolled_back_to, d.removed_at from deployments d join serves s on s.id = d.serve_id where s.name = ? order by d.revision',
    [serve],
  )
const locks = (c: TestContext, serve: string) => c.query('select l.* from change_locks l join serves s on s.id = l.serve_id where s.name = ?', [serve])
const events = async (c: TestContext, serve: string, revision: number) =>
  ((await c.request('GET', `/api/v1/serve/${serve}/deployments/${revision}`)).body.data.events as { kind: string; weight: number | null; actor: string; detail: string }[]).map(
    ({ kind, weight, actor }) => ({ kind, weight, actor }),
  )
const imageOf = (object: StoredObject | undefined) => (object?.spec as { template: { spec: { containers: { image: string }[] } } } | undefined)?.template.spec.containers[0]?.image
const owned = (serve: string) => fake.list().filter((o) => o.kind !== 'Pod' && o.metadata.labels?.['darwin.ml-serve/serve'] === serve)
const deploy = (c: TestContext, serve: string, version: string, config?: Record<string, unknown>, query = '') =>
  c.request('POST', `/api/v1/serve/${serve}/deploy${query}`, { env: 'prod', artifact_version: version, ...(config ? { api_serve_deployment_config: config } : {}) })
const current = async (c: TestContext, serve: string) => (await c.request('GET', `/api/v1/serve/${serve}/deployment/prod`)).body.data

/** The stable side runs `pods` ready pods of its current spec: its rollout is complete. */
function stableRuns(serve: string, pods = 4) {
  fake.runPods(NS, `${serve}-prod`, { count: pods })
}
function failRollout(serve: string) {
  const deployment = fake.get('Deployment', NS, `${serve}-prod`)
  fake.setStatus('Deployment', NS, `${serve}-prod`, {
    observedGeneration: deployment?.metadata.generation,
    replicas: 2,
    updatedReplicas: 1,
    availableReplicas: 1,
    conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'ReplicaSet has timed out progressing.' }],
  })
}
/** v1 active with 4 pods. */
async function activeV1(c: TestContext, serve: string) {
  await setUpServe(c, serve)
  expect((await deploy(c, serve, 'v1')).status).toBe(201)
  stableRuns(serve)
  await c.deployment.tracker.tick()
  expect((await revisions(c, serve)).map((r) => r.status)).toEqual(['active'])
}

const canary = (overrides: Record<string, unknown> = {}) => ({ deployment_strategy: 'canary', canary: { steps: [10, 50, 100], step_seconds: 0, max_restarts: 1, ready_timeout_seconds: 60, ...overrides } })

beforeEach(() => fake.clearRequests())

describe('automatic rollback — happy path', () => {
  test('a failed rollout beside an active revision: ?wait= answers failed + rolled_back_to, a new auto-rollback revision restores the active one', async () => {
    await activeV1(ctx, 'ar1')
    setTimeout(() => failRollout('ar1'), 150)
    const waited = await deploy(ctx, 'ar1', 'v2', undefined, '?wait=10')
    expect(waited.status).toBe(200)
    expect(waited.body.data).toMatchObject({ revision: 2, status: 'failed', rolled_back_to: 3 })
    expect(waited.body.message).toContain('rolled back automatically: revision 3 serves in its place')
    const rows = await revisions(ctx, 'ar1')
    expect(rows).toMatchObject([
      { revision: 1, status: 'active' },
      { revision: 2, status: 'failed', rolled_back_to: 3 },
      { revision: 3, status: 'deploying', reason: 'auto-rollback', rolled_back_from: 1 },
    ])
    expect(rows[1]?.failure_reason).toContain('ProgressDeadlineExceeded')
    // The cluster runs v1's spec again, rendered under v1's number: the manifests are v1's byte for byte.
    expect(imageOf(fake.get('Deployment', NS, 'ar1-prod'))).toBe('registry.example.com/ar1:v1')
    const manifests = await ctx.query<{ revision: number; manifests_yaml: string }>(
      'select d.revision, d.manifests_yaml from deployments d join serves s on s.id = d.serve_id where s.name = ? order by d.revision',
      ['ar1'],
    )
    expect(manifests[2]?.manifests_yaml).toBe(manifests[0]?.manifests_yaml as string)
    expect(await events(ctx, 'ar1', 2)).toEqual([
      { kind: 'rollout-failed', weight: null, actor: 'rollout-tracker' },
      { kind: 'auto-rollback', weight: null, actor: 'rollout-tracker' },
    ])
    const audit = await ctx.query<{ actor_name: string; action: string; summary: unknown }>("select actor_name, action, summary from audit_log where resource_name = 'ar1' and action = 'AUTO-ROLLBACK'")
    expect(audit).toHaveLength(1)
    expect(audit[0]?.actor_name).toBe('rollout-tracker')
    expect(audit[0]?.summary).toMatchObject({ revision: 3, reason: 'auto-rollback', rolled_back_from: 1, failed_revision: 2 })
    // The auto-rollback completes like any rollout: it becomes active, v1 steps aside.
    stableRuns('ar1')
    await ctx.deployment.tracker.tick()
    expect((await revisions(ctx, 'ar1')).map((r) => r.status)).toEqual(['superseded', 'failed', 'active'])
    expect(await locks(ctx, 'ar1')).toEqual([])
  })

  test('"auto_rollback": false keeps a failed rollout as it failed: no new revision, the cluster keeps its spec', async () => {
    await activeV1(ctx, 'ar2')
    expect((await deploy(ctx, 'ar2', 'v2', { auto_rollback: false })).status).toBe(201)
    failRollout('ar2')
    await ctx.deployment.tracker.tick()
    expect(await revisions(ctx, 'ar2')).toMatchObject([
      { revision: 1, status: 'active' },
      { revision: 2, status: 'failed', rolled_back_to: null },
    ])
    expect(imageOf(fake.get('Deployment', NS, 'ar2-prod'))).toBe('registry.example.com/ar2:v2')
    expect(await locks(ctx, 'ar2')).toEqual([])
  })

  test('a first deploy that fails is removed: nothing half-running, and undeploy then has nothing to do', async () => {
    await setUpServe(ctx, 'ar3')
    expect((await deploy(ctx, 'ar3', 'v1')).status).toBe(201)
    expect(owned('ar3').length).toBeGreaterThan(0)
    failRollout('ar3')
    await ctx.deployment.tracker.tick()
    const [row] = await revisions(ctx, 'ar3')
    expect(row).toMatchObject({ revision: 1, status: 'failed', rolled_back_to: null })
    expect(row?.removed_at).not.toBeNull()
    expect(owned('ar3')).toEqual([])
    expect(await events(ctx, 'ar3', 1)).toEqual([
      { kind: 'rollout-failed', weight: null, actor: 'rollout-tracker' },
      { kind: 'removed', weight: null, actor: 'rollout-tracker' },
    ])
    fake.clearRequests()
    const undeployed = await ctx.request('POST', '/api/v1/serve/ar3/undeploy', { env: 'prod' })
    expect(undeployed.body.message).toBe('Nothing to undeploy')
    expect(fake.requests).toEqual([])
  })
})

describe('automatic rollback — errors', () => {
  test('an automatic rollback that fails in turn is not rolled back again', async () => {
    await activeV1(ctx, 'ar4')
    expect((await deploy(ctx, 'ar4', 'v2')).status).toBe(201)
    failRollout('ar4')
    await ctx.deployment.tracker.tick()
    failRollout('ar4')
    await ctx.deployment.tracker.tick()
    await ctx.deployment.tracker.tick()
    expect(await revisions(ctx, 'ar4')).toMatchObject([
      { revision: 1, status: 'active' },
      { revision: 2, status: 'failed', rolled_back_to: 3 },
      { revision: 3, status: 'failed', reason: 'auto-rollback', rolled_back_to: null },
    ])
    expect(await locks(ctx, 'ar4')).toEqual([])
  })

  test('two replicas seeing the same failure roll back once', async () => {
    await activeV1(ctx, 'ar5')
    expect((await deploy(ctx, 'ar5', 'v2')).status).toBe(201)
    failRollout('ar5')
    const other = createDeploymentRuntime({ ...ctx })
    await Promise.all([ctx.deployment.tracker.tick(), other.tracker.tick()])
    const rows = await revisions(ctx, 'ar5')
    expect(rows.map((r) => [r.revision, r.status, r.reason])).toEqual([
      [1, 'active', 'deploy'],
      [2, 'failed', 'deploy'],
      [3, 'deploying', 'auto-rollback'],
    ])
  })

  test('the cluster refusing the rollback: the rollback is failed, the lock released, the next deploy works', async () => {
    await activeV1(ctx, 'ar6')
    expect((await deploy(ctx, 'ar6', 'v2')).status).toBe(201)
    failRollout('ar6')
    fake.failNext({ method: 'PATCH', status: 500, message: 'etcdserver: request timed out' })
    await ctx.deployment.tracker.tick()
    expect(await revisions(ctx, 'ar6')).toMatchObject([
      { revision: 1, status: 'active' },
      { revision: 2, status: 'failed', rolled_back_to: null },
      { revision: 3, status: 'failed', reason: 'auto-rollback' },
    ])
    expect(await locks(ctx, 'ar6')).toEqual([])
    expect((await deploy(ctx, 'ar6', 'v3')).status).toBe(201)
  })
})

describe('canary — happy path', () => {
  test('a healthy canary goes 10 → 50 → 100 %, then replaces the stable side, whose old pods are gone', async () => {
    await activeV1(ctx, 'cy1')
    const started = await deploy(ctx, 'cy1', 'v2', canary())
    expect(started.status).toBe(201)
    expect(started.body.data.api_serve_deployment_config).toMatchObject({ deployment_strategy: 'canary', canary: { steps: [10, 50, 100], step_seconds: 0 } })
    // Beside the stable Deployment, untouched: a canary Deployment of 1 pod (10 % beside 4: ceil(4·10/90)).
    expect(imageOf(fake.get('Deployment', NS, 'cy1-prod'))).toBe('registry.example.com/cy1:v1')
    const canaryDeployment = fake.get('Deployment', NS, 'cy1-prod-canary')
    expect(imageOf(canaryDeployment)).toBe('registry.example.com/cy1:v2')
    const spec = canaryDeployment?.spec as { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } }
    expect(spec.replicas).toBe(1)
    expect(spec.selector.matchLabels).toMatchObject({ 'app.kubernetes.io/instance': 'cy1-prod', 'darwin.ml-serve/track': 'canary' })
    // Without Istio the one Service selects both sides.
    const serviceSelector = (fake.get('Service', NS, 'cy1-prod')?.spec as { selector: Record<string, string> }).selector
    expect(Object.entries(serviceSelector).every(([key, value]) => spec.template.metadata.labels[key] === value)).toBe(true)
    expect(fake.get('HorizontalPodAutoscaler', NS, 'cy1-prod-canary')).toBeUndefined()

    let view = await current(ctx, 'cy1')
    expect(view.canary).toMatchObject({ phase: 'stepping', step: 1, weight: 10, canary_replicas: 1, stable_revision: 1, next_step_in_seconds: null, health: { ready_replicas: 0, desired_replicas: 1, healthy: false } })
    expect(view.in_flight.revision).toBe(2)

    fake.runPods(NS, 'cy1-prod-canary', { ready: 1 })
    await ctx.deployment.tracker.tick() // healthy from now
    view = await current(ctx, 'cy1')
    expect(view.canary).toMatchObject({ step: 1, weight: 10, next_step_in_seconds: 0, health: { healthy: true, ready_replicas: 1 } })
    await ctx.deployment.tracker.tick() // healthy for step_seconds: next step
    view = await current(ctx, 'cy1')
    expect(view.canary).toMatchObject({ phase: 'stepping', step: 2, weight: 50, canary_replicas: 4, healthy_since: null })
    expect((fake.get('Deployment', NS, 'cy1-prod-canary')?.spec as { replicas: number }).replicas).toBe(4)

    fake.runPods(NS, 'cy1-prod-canary', { ready: 4 })
    await ctx.deployment.tracker.tick()
    await ctx.deployment.tracker.tick() // 100 %: the full render
    view = await current(ctx, 'cy1')
    expect(view.canary).toMatchObject({ phase: 'promoting', step: 3, weight: 100 })
    expect(imageOf(fake.get('Deployment', NS, 'cy1-prod'))).toBe('registry.example.com/cy1:v2')
    expect(fake.get('Deployment', NS, 'cy1-prod-canary')).toBeUndefined()

    stableRuns('cy1')
    await ctx.deployment.tracker.tick()
    expect((await revisions(ctx, 'cy1')).map((r) => r.status)).toEqual(['superseded', 'active'])
    expect((await current(ctx, 'cy1')).canary).toBeNull()
    expect(await locks(ctx, 'cy1')).toEqual([])
    expect(await events(ctx, 'cy1', 2)).toEqual([
      { kind: 'canary-started', weight: 10, actor: 'admin' },
      { kind: 'canary-step', weight: 50, actor: 'rollout-tracker' },
      { kind: 'canary-promoted', weight: 100, actor: 'rollout-tracker' },
    ])
    const audit = await ctx.query<{ actor_name: string; action: string }>("select actor_name, action from audit_log where resource_name = 'cy1' and actor_name = 'rollout-tracker' order by id")
    expect(audit.map((a) => a.action)).toEqual(['CANARY-STEP', 'CANARY-STEP'])
    const phase = await ctx.query<{ phase: string }>('select c.phase from canary_rollouts c join deployments d on d.id = c.deployment_id join serves s on s.id = d.serve_id where s.name = ?', ['cy1'])
    expect(phase).toEqual([{ phase: 'promoted' }])
  })

  test('a step is not taken before the canary has been healthy for step_seconds', async () => {
    await activeV1(ctx, 'cy2')
    expect((await deploy(ctx, 'cy2', 'v2', canary({ step_seconds: 3600 }))).status).toBe(201)
    fake.runPods(NS, 'cy2-prod-canary', { ready: 1 })
    await ctx.deployment.tracker.tick()
    await ctx.deployment.tracker.tick()
    const view = await current(ctx, 'cy2')
    expect(view.canary).toMatchObject({ step: 1, weight: 10, step_seconds: 3600 })
    expect(view.canary.next_step_in_seconds).toBeGreaterThan(3590)
    expect(view.canary.next_step_in_seconds).toBeLessThanOrEqual(3600)
  })

  test('promote moves one step, or all the way with {"full": true}; abort puts all traffic back on the stable revision', async () => {
    await activeV1(ctx, 'cy3')
    expect((await deploy(ctx, 'cy3', 'v2', canary({ step_seconds: 3600 }))).status).toBe(201)
    const promoted = await ctx.request('POST', '/api/v1/serve/cy3/deployment/prod/promote')
    expect(promoted.status).toBe(200)
    expect(promoted.body.data.canary).toMatchObject({ step: 2, weight: 50 })
    expect(imageOf(fake.get('Deployment', NS, 'cy3-prod'))).toBe('registry.example.com/cy3:v1')
    const aborted = await ctx.request('POST', '/api/v1/serve/cy3/deployment/prod/abort')
    expect(aborted.status).toBe(200)
    expect(aborted.body.data).toMatchObject({ canary: null, in_flight: null, active: { revision: 1 } })
    expect(fake.get('Deployment', NS, 'cy3-prod-canary')).toBeUndefined()
    expect(imageOf(fake.get('Deployment', NS, 'cy3-prod'))).toBe('registry.example.com/cy3:v1')
    expect(await revisions(ctx, 'cy3')).toMatchObject([
      { revision: 1, status: 'active' },
      { revision: 2, status: 'cancelled', rolled_back_to: 1 },
    ])
    expect((await revisions(ctx, 'cy3'))[1]?.failure_reason).toBe('aborted by admin at 50 %')
    expect(await locks(ctx, 'cy3')).toEqual([])
    expect((await events(ctx, 'cy3', 2)).map((e) => e.kind)).toEqual(['canary-started', 'canary-step', 'canary-aborted'])

    // Full promotion straight from step 1.
    expect((await deploy(ctx, 'cy3', 'v3', canary({ step_seconds: 3600 }))).status).toBe(201)
    const full = await ctx.request('POST', '/api/v1/serve/cy3/deployment/prod/promote', { full: true })
    expect(full.status).toBe(200)
    expect(full.body.data.canary).toMatchObject({ phase: 'promoting', weight: 100 })
    expect(imageOf(fake.get('Deployment', NS, 'cy3-prod'))).toBe('registry.example.com/cy3:v3')
    stableRuns('cy3')
    await ctx.deployment.tracker.tick()
    expect((await revisions(ctx, 'cy3')).map((r) => r.status)).toEqual(['superseded', 'cancelled', 'active'])
    const audit = await ctx.query<{ action: string; actor_name: string }>("select action, actor_name from audit_log where resource_name = 'cy3' and action like 'POST %/deployment/%' order by id")
    expect(audit).toEqual([
      { action: 'POST /api/v1/serve/:serve_name/deployment/:env/promote', actor_name: 'admin' },
      { action: 'POST /api/v1/serve/:serve_name/deployment/:env/abort', actor_name: 'admin' },
      { action: 'POST /api/v1/serve/:serve_name/deployment/:env/promote', actor_name: 'admin' },
    ])
  })

  test('a restart of the app mid-canary: a new process resumes it at its step', async () => {
    await activeV1(ctx, 'cy4')
    expect((await deploy(ctx, 'cy4', 'v2', canary())).status).toBe(201)
    fake.runPods(NS, 'cy4-prod-canary', { ready: 1 })
    await ctx.deployment.tracker.tick()
    const restarted = createDeploymentRuntime({ ...ctx })
    await restarted.tracker.tick()
    expect((await current(ctx, 'cy4')).canary).toMatchObject({ step: 2, weight: 50 })
    fake.runPods(NS, 'cy4-prod-canary', { ready: 4 })
    await restarted.tracker.tick()
    await restarted.tracker.tick()
    stableRuns('cy4')
    await restarted.tracker.tick()
    expect((await revisions(ctx, 'cy4')).map((r) => r.status)).toEqual(['superseded', 'active'])
  })

  test('scaling moves both sides: the canary follows the stable side in proportion', async () => {
    await activeV1(ctx, 'cy5')
    expect((await deploy(ctx, 'cy5', 'v2', canary({ step_seconds: 3600 }))).status).toBe(201)
    expect((await ctx.request('POST', '/api/v1/serve/cy5/deployment/prod/promote')).status).toBe(200) // 50 %: 4 beside 4
    stableRuns('cy5', 8) // the autoscaler (or a scaling window) doubled the stable side
    fake.runPods(NS, 'cy5-prod-canary', { ready: 4 })
    await ctx.deployment.tracker.tick()
    expect((await current(ctx, 'cy5')).canary).toMatchObject({ weight: 50, canary_replicas: 8 })
    expect((fake.get('Deployment', NS, 'cy5-prod-canary')?.spec as { replicas: number }).replicas).toBe(8)
  })
})

describe('canary — infra changes', () => {
  test('an infra PATCH of a serve whose active revision is a canary\'s starts a canary too', async () => {
    await activeV1(ctx, 'cy6')
    expect((await deploy(ctx, 'cy6', 'v2', canary({ step_seconds: 3600 }))).status).toBe(201)
    expect((await ctx.request('POST', '/api/v1/serve/cy6/deployment/prod/promote', { full: true })).status).toBe(200)
    stableRuns('cy6')
    await ctx.deployment.tracker.tick()
    const patched = await ctx.request('PATCH', '/api/v1/serve/cy6/infra-config/prod', { api_serve_infra_config: { cores: 2 } })
    expect(patched.status).toBe(200)
    expect(patched.body.data.started_revision).toBe(3)
    const cpu = (name: string) => (fake.get('Deployment', NS, name)?.spec as { template: { spec: { containers: { resources: { requests: { cpu: string } } }[] } } }).template.spec.containers[0]?.resources.requests.cpu
    expect(cpu('cy6-prod-canary')).toBe('2')
    expect(cpu('cy6-prod')).toBe('1')
    expect((await current(ctx, 'cy6')).canary).toMatchObject({ phase: 'stepping', step: 1, weight: 10, stable_revision: 2 })
    expect((await ctx.request('GET', '/api/v1/serve/cy6/infra-config/prod')).body.data.api_serve_infra_config.cores).toBe(2)
    // Aborted, the stable revision's config is what runs, and what GET shows.
    expect((await ctx.request('POST', '/api/v1/serve/cy6/deployment/prod/abort')).status).toBe(200)
    expect((await ctx.request('GET', '/api/v1/serve/cy6/infra-config/prod')).body.data.api_serve_infra_config.cores).toBe(1)
  })
})

describe('canary — errors', () => {
  test('an unhealthy canary is rolled back at step 1 and the stable side is untouched', async () => {
    await activeV1(ctx, 'ce1')
    expect((await deploy(ctx, 'ce1', 'v2', canary())).status).toBe(201)
    fake.clearRequests()
    fake.runPods(NS, 'ce1-prod-canary', { ready: 0, restarts: 3, waiting: 'CrashLoopBackOff' })
    await ctx.deployment.tracker.tick()
    const rows = await revisions(ctx, 'ce1')
    expect(rows).toMatchObject([
      { revision: 1, status: 'active' },
      { revision: 2, status: 'failed', rolled_back_to: 1 },
    ])
    expect(rows[1]?.failure_reason).toBe('canary unhealthy at step 1 (10 %): 3 container restarts (max_restarts 1)')
    expect(fake.get('Deployment', NS, 'ce1-prod-canary')).toBeUndefined()
    // Nothing but the canary was written or deleted.
    const writes = fake.requests.filter((r) => r.method !== 'GET')
    expect(writes.map((r) => `${r.method} ${r.path}`)).toEqual([`DELETE /apis/apps/v1/namespaces/${NS}/deployments/ce1-prod-canary`])
    expect(imageOf(fake.get('Deployment', NS, 'ce1-prod'))).toBe('registry.example.com/ce1:v1')
    expect(await locks(ctx, 'ce1')).toEqual([])
    expect((await events(ctx, 'ce1', 2)).map((e) => [e.kind, e.actor])).toEqual([
      ['canary-started', 'admin'],
      ['canary-rolled-back', 'rollout-tracker'],
    ])
  })

  test('pods never ready within ready_timeout_seconds: rolled back; with "auto_rollback": false the canary is held at its step', async () => {
    await activeV1(ctx, 'ce2')
    expect((await deploy(ctx, 'ce2', 'v2', { ...canary({ ready_timeout_seconds: 10 }), auto_rollback: false })).status).toBe(201)
    fake.runPods(NS, 'ce2-prod-canary', { ready: 0 })
    await ctx.query("update canary_rollouts set step_started_at = date_sub(step_started_at, interval 1 minute)")
    await ctx.deployment.tracker.tick()
    const held = await current(ctx, 'ce2')
    expect(held.canary).toMatchObject({ phase: 'stepping', step: 1, health: { healthy: false, problem: '0/1 pods ready after ready_timeout_seconds 10' } })
    expect((await revisions(ctx, 'ce2'))[1]?.status).toBe('deploying')
    expect((await ctx.request('POST', '/api/v1/serve/ce2/deployment/prod/abort')).status).toBe(200)

    expect((await deploy(ctx, 'ce2', 'v3', { ...canary({ ready_timeout_seconds: 10 }), auto_rollback: true })).status).toBe(201)
    fake.runPods(NS, 'ce2-prod-canary', { ready: 0 })
    await ctx.query("update canary_rollouts set step_started_at = date_sub(step_started_at, interval 1 minute) where phase = 'stepping'")
    await ctx.deployment.tracker.tick()
    expect((await revisions(ctx, 'ce2'))[2]).toMatchObject({ status: 'failed', rolled_back_to: 1 })
  })

  test('during a canary: a deploy, an infra change and a rollback are refused (409), undeploy removes both sides', async () => {
    await activeV1(ctx, 'ce3')
    expect((await deploy(ctx, 'ce3', 'v2', canary())).status).toBe(201)
    const second = await deploy(ctx, 'ce3', 'v3')
    expect(second.status).toBe(409)
    expect(second.body.code).toBe('CHANGE_IN_PROGRESS')
    expect(second.body.message).toContain('runs as a canary')
    expect((await ctx.request('PATCH', '/api/v1/serve/ce3/infra-config/prod', { api_serve_infra_config: { cores: 2 } })).status).toBe(409)
    expect((await ctx.request('POST', '/api/v1/serve/ce3/rollback', { env: 'prod', revision: 1 })).status).toBe(409)
    expect(fake.get('Deployment', NS, 'ce3-prod-canary')).toBeDefined()
    const undeployed = await ctx.request('POST', '/api/v1/serve/ce3/undeploy', { env: 'prod' })
    expect(undeployed.status).toBe(200)
    expect(owned('ce3')).toEqual([])
    expect((await revisions(ctx, 'ce3')).map((r) => r.status)).toEqual(['undeployed', 'cancelled'])
    expect(await locks(ctx, 'ce3')).toEqual([])
    const phase = await ctx.query<{ phase: string }>('select c.phase from canary_rollouts c join deployments d on d.id = c.deployment_id join serves s on s.id = d.serve_id where s.name = ?', ['ce3'])
    expect(phase).toEqual([{ phase: 'aborted' }])
  })

  test('while another actor changes the canary (its lease held), promote, abort and undeploy get 409 and change nothing', async () => {
    await activeV1(ctx, 'ce9')
    expect((await deploy(ctx, 'ce9', 'v2', canary({ step_seconds: 3600 }))).status).toBe(201)
    await ctx.query("update canary_rollouts c join deployments d on d.id = c.deployment_id join serves s on s.id = d.serve_id set c.lease_until = date_add(utc_timestamp(3), interval 1 minute) where s.name = 'ce9'")
    fake.clearRequests()
    for (const [path, body] of [['deployment/prod/promote', undefined], ['deployment/prod/abort', undefined], ['undeploy', { env: 'prod' }]] as const) {
      const answer = await ctx.request('POST', `/api/v1/serve/ce9/${path}`, body)
      expect({ path, status: answer.status, code: answer.body.code }).toEqual({ path, status: 409, code: 'CHANGE_IN_PROGRESS' })
    }
    expect(fake.requests.filter((r) => r.method !== 'GET')).toEqual([])
    expect((await revisions(ctx, 'ce9')).map((r) => r.status)).toEqual(['active', 'deploying'])
    // A holder that died frees it once the lease has run out.
    await ctx.query("update canary_rollouts c join deployments d on d.id = c.deployment_id join serves s on s.id = d.serve_id set c.lease_until = date_sub(utc_timestamp(3), interval 1 second) where s.name = 'ce9'")
    expect((await ctx.request('POST', '/api/v1/serve/ce9/undeploy', { env: 'prod' })).status).toBe(200)
    expect(owned('ce9')).toEqual([])
  })

  test('promote or abort with no canary: 409 NO_CANARY, nothing sent', async () => {
    await activeV1(ctx, 'ce4')
    fake.clearRequests()
    for (const command of ['promote', 'abort']) {
      const answer = await ctx.request('POST', `/api/v1/serve/ce4/deployment/prod/${command}`)
      expect(answer.status).toBe(409)
      expect(answer.body.code).toBe('NO_CANARY')
    }
    expect(fake.requests).toEqual([])
    expect((await ctx.request('POST', '/api/v1/serve/nope/deployment/prod/abort')).status).toBe(404)
  })

  test('a first deploy with the canary strategy rolls out as a whole (nothing to compare it with)', async () => {
    await setUpServe(ctx, 'ce5')
    expect((await deploy(ctx, 'ce5', 'v1', canary())).status).toBe(201)
    expect(fake.get('Deployment', NS, 'ce5-prod-canary')).toBeUndefined()
    expect((await current(ctx, 'ce5')).canary).toBeNull()
  })

  test('invalid canary settings are refused with the field that is wrong, before anything is recorded', async () => {
    await activeV1(ctx, 'ce6')
    const cases: [Record<string, unknown>, string][] = [
      [canary({ steps: [10, 50] }), '/api_serve_deployment_config/canary/steps'],
      [canary({ steps: [50, 10, 100] }), '/api_serve_deployment_config/canary/steps'],
      [canary({ steps: [0, 100] }), '/api_serve_deployment_config/canary/steps/0'],
      [canary({ step_seconds: -1 }), '/api_serve_deployment_config/canary/step_seconds'],
      [{ deployment_strategy: 'rolling', canary: { steps: [10, 100] } }, '/api_serve_deployment_config/canary'],
      [{ deployment_strategy: 'canary', canary: { stepz: [1] } }, '/api_serve_deployment_config/canary/stepz'],
    ]
    for (const [config, path] of cases) {
      const answer = await deploy(ctx, 'ce6', 'v2', config)
      expect({ config, status: answer.status, code: answer.body.code }).toEqual({ config, status: 422, code: 'VALIDATION_FAILED' })
      expect(answer.body.errors.map((e: { path: string }) => e.path)).toContain(path)
    }
    expect(await revisions(ctx, 'ce6')).toHaveLength(1)
  })

  test('a DCM environment refuses a canary up front (422 naming why), before anything is recorded', async () => {
    expect((await ctx.request('POST', '/api/v1/environment', environmentBody('dcm-prod', { namespace: NS, cluster_driver: 'dcm' }))).status).toBe(201)
    await setUpServe(ctx, 'ce7')
    expect((await ctx.request('POST', '/api/v1/serve/ce7/infra-config/dcm-prod', { api_serve_infra_config: infra })).status).toBe(201)
    const answer = await ctx.request('POST', '/api/v1/serve/ce7/deploy', { env: 'dcm-prod', artifact_version: 'v1', api_serve_deployment_config: canary() })
    expect(answer.status).toBe(422)
    expect(answer.body.errors[0].path).toBe('/api_serve_deployment_config/deployment_strategy')
    expect(answer.body.errors[0].message).toContain('Flagger')
    expect(await revisions(ctx, 'ce7')).toEqual([])
  })
})

describe('canary — what it cannot run on', () => {
  test('a Ray serve is refused a canary (422 naming why); it rolls out whole with rolling', async () => {
    expect((await ctx.request('POST', '/api/v1/serve', { name: 'ce8', type: 'api' })).status).toBe(201)
    expect((await ctx.request('POST', '/api/v1/serve/ce8/infra-config/prod', { api_serve_infra_config: { ...infra, backend_type: 'ray' } })).status).toBe(201)
    expect((await ctx.request('POST', '/api/v1/artifact', { serve_name: 'ce8', version: 'v1', image: 'registry.example.com/ce8:v1' })).status).toBe(201)
    const refused = await deploy(ctx, 'ce8', 'v1', canary())
    expect(refused.status).toBe(422)
    expect(refused.body.errors[0]).toMatchObject({ path: '/api_serve_deployment_config/deployment_strategy' })
    expect(refused.body.errors[0].message).toContain('Ray serve rolls out as a whole')
    expect(await revisions(ctx, 'ce8')).toEqual([])
    expect((await deploy(ctx, 'ce8', 'v1', { deployment_strategy: 'rolling' })).status).toBe(201)
  })
})

describe('canary — security', () => {
  test('promote and abort need the deploy scope', async () => {
    await activeV1(ctx, 'cs1')
    expect((await deploy(ctx, 'cs1', 'v2', canary({ step_seconds: 3600 }))).status).toBe(201)
    const reader = await ctx.createToken(['read'])
    for (const command of ['promote', 'abort']) {
      const answer = await ctx.request('POST', `/api/v1/serve/cs1/deployment/prod/${command}`, undefined, { authorization: `Bearer ${reader}` })
      expect(answer.status).toBe(403)
      expect((await ctx.request('POST', `/api/v1/serve/cs1/deployment/prod/${command}`, undefined, { authorization: '' })).status).toBe(401)
    }
    expect((await current(ctx, 'cs1')).canary).toMatchObject({ step: 1 })
  })
})

describe('canary — Istio', async () => {
  const istioSettings = { ...settings, ENABLE_ISTIO: 'true' }
  const istio = await createTestContext(istioSettings, { clusterDrivers: fake.drivers(istioSettings) })
  await istio.request('POST', '/api/v1/environment', environmentBody('prod', { namespace: 'ml-istio' }))
  const routes = (serve: string) =>
    ((fake.get('VirtualService', 'ml-istio', `${serve}-prod`)?.spec as { http: { route: { destination: { host: string }; weight?: number }[] }[] }).http[0]?.route ?? []).map((r) => [r.destination.host, r.weight ?? 100])

  test('the VirtualService splits the traffic by weight between the two Services; abort gives it all back', async () => {
    await setUpServe(istio, 'ci1')
    expect((await deploy(istio, 'ci1', 'v1')).status).toBe(201)
    fake.runPods('ml-istio', 'ci1-prod', { count: 4 })
    await istio.deployment.tracker.tick()
    expect((await deploy(istio, 'ci1', 'v2', canary())).status).toBe(201)
    expect(routes('ci1')).toEqual([
      ['ci1-prod.ml-istio.svc.cluster.local', 90],
      ['ci1-prod-canary.ml-istio.svc.cluster.local', 10],
    ])
    // The canary's pods are out of the stable Service's selection, in their own.
    const canaryLabels = (fake.get('Deployment', 'ml-istio', 'ci1-prod-canary')?.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels
    expect(canaryLabels['app.kubernetes.io/instance']).toBe('ci1-prod-canary')
    expect((fake.get('Service', 'ml-istio', 'ci1-prod-canary')?.spec as { selector: Record<string, string> }).selector['app.kubernetes.io/instance']).toBe('ci1-prod-canary')
    const promoted = await istio.request('POST', '/api/v1/serve/ci1/deployment/prod/promote')
    expect(promoted.status).toBe(200)
    expect(routes('ci1')).toEqual([
      ['ci1-prod.ml-istio.svc.cluster.local', 50],
      ['ci1-prod-canary.ml-istio.svc.cluster.local', 50],
    ])
    expect((await istio.request('POST', '/api/v1/serve/ci1/deployment/prod/abort')).status).toBe(200)
    expect(routes('ci1')).toEqual([['ci1-prod.ml-istio.svc.cluster.local', 100]])
    expect(fake.get('Service', 'ml-istio', 'ci1-prod-canary')).toBeUndefined()
    expect(fake.get('Deployment', 'ml-istio', 'ci1-prod-canary')).toBeUndefined()
  })
})
