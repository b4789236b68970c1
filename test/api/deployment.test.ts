/**
 * The deployment lifecycle end to end, over the API, against MySQL and a fake Kubernetes API server:
 * environment → serve → infra config → artifact → deploy → active, redeploy on infra PATCH, rollback,
 * undeploy, dry run, concurrent deploys, failing rollouts and applies, a restart mid-rollout.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { createDeploymentRuntime } from '../../src/modules/deployment'
import { createTestContext } from '../support/context'
import { FakeKubernetes } from '../support/fake-kubernetes'
import { environmentBody } from '../support/fixtures'

const fake = new FakeKubernetes()
afterAll(() => fake.stop())
const settings = { ENV: 'prod', ROLLOUT_POLL_INTERVAL_MS: '50', CLUSTER_REQUEST_ATTEMPTS: '1', CLUSTER_REQUEST_TIMEOUT_MS: '1000', MLFLOW_TRACKING_URI: 'https://mlflow.internal', MLFLOW_TRACKING_USERNAME: 'ml', MLFLOW_TRACKING_PASSWORD: 'mlflow-pw-do-not-leak' }
const ctx = await createTestContext(settings, {
  clusterDrivers: fake.drivers(settings),
})
const NS = 'ml-serve'

interface Row {
  revision: number
  status: string
  reason: string
  failure_reason: string | null
  rolled_back_from: number | null
  manifests_yaml: string
}
const revisions = (serve: string) =>
  ctx.query<Row>('select d.* from deployments d join serves s on s.id = d.serve_id where s.name = ? order by d.revision', [serve])
const locks = () => ctx.query('select * from change_locks')

/** What a Deployment controller would report once every replica of the current spec is up. */
function completeRollout(name: string, replicas = 2) {
  const generation = Number(fake.get('Deployment', NS, name)?.metadata.generation ?? 1)
  fake.setStatus('Deployment', NS, name, { observedGeneration: generation, replicas, updatedReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas })
}

async function setUpServe(name: string, env = 'prod') {
  if ((await ctx.request('GET', `/api/v1/environment/${env}`)).status === 404) {
    expect((await ctx.request('POST', '/api/v1/environment', environmentBody(env, { namespace: NS }))).status).toBe(201)
  }
  expect((await ctx.request('POST', '/api/v1/serve', { name, type: 'api', description: 'Production model serving', space: 'ml-team' })).status).toBe(201)
  const infra = { backend_type: 'fastapi', cores: 4, memory: 8, min_replicas: 2, max_replicas: 10, node_capacity_type: 'spot' }
  expect((await ctx.request('POST', `/api/v1/serve/${name}/infra-config/${env}`, { api_serve_infra_config: infra })).status).toBe(201)
  for (const version of ['v1.0.0', 'v1.1.0']) {
    expect((await ctx.request('POST', '/api/v1/artifact', { serve_name: name, version, image: `registry.example.com/${name}:${version}` })).status).toBe(201)
  }
}

const deploy = (serve: string, version: string, extra: Record<string, unknown> = {}, query = '') =>
  ctx.request('POST', `/api/v1/serve/${serve}/deploy${query}`, {
    env: 'prod',
    artifact_version: version,
    api_serve_deployment_config: { deployment_strategy: 'rolling', environment_variables: { MODEL_PATH: '/models/production' } },
    ...extra,
  })

describe('the standard workflow — happy path', () => {
  test('deploy answers 201 deploying, records the revision, applies it; the rollout ends active', async () => {
    await setUpServe('fraud')
    const response = await deploy('fraud', 'v1.0.0')
    expect(response.status).toBe(201)
    expect(response.body.data).toMatchObject({
      revision: 1,
      serve_name: 'fraud',
      env: 'prod',
      status: 'deploying',
      reason: 'deploy',
      artifact_version: 'v1.0.0',
      image: 'registry.example.com/fraud:v1.0.0',
      service_url: 'https://fraud.mycompany.com',
      api_serve_deployment_config: { deployment_strategy: 'rolling', environment_variables: { MODEL_PATH: '/models/production' } },
      infra_snapshot: { cores: 4, memory: 8, min_replicas: 2, max_replicas: 10, node_capacity_type: 'spot' },
    })
    expect(await locks()).toHaveLength(1)
    const deployment = fake.get('Deployment', NS, 'fraud-prod') as { spec: { template: { spec: { containers: { image: string; env: { name: string; value?: string; valueFrom?: unknown }[] }[] } } } }
    const container = deployment.spec.template.spec.containers[0]
    expect(container?.image).toBe('registry.example.com/fraud:v1.0.0')
    expect(container?.env).toContainEqual({ name: 'MODEL_PATH', value: '/models/production' })
    expect(fake.get('HorizontalPodAutoscaler', NS, 'fraud-prod')).toMatchObject({ spec: { minReplicas: 2, maxReplicas: 10 } })
    // The MLflow password is in a Secret, referenced by the Deployment, never in a manifest.
    expect(JSON.stringify(deployment)).not.toContain('mlflow-pw-do-not-leak')
    expect((await revisions('fraud'))[0]?.manifests_yaml).not.toContain('mlflow-pw-do-not-leak')

    await ctx.deployment.tracker.tick()
    expect((await revisions('fraud'))[0]?.status).toBe('deploying') // pods not ready yet
    completeRollout('fraud-prod')
    await ctx.deployment.tracker.tick()
    expect((await revisions('fraud')).map((r) => r.status)).toEqual(['active'])
    expect(await locks()).toHaveLength(0)
  })

  test('current deployment shows the active revision and live progress; the original status route says READY', async () => {
    const current = await ctx.request('GET', '/api/v1/serve/fraud/deployment/prod')
    expect(current.status).toBe(200)
    expect(current.body.data).toMatchObject({ active: { revision: 1, status: 'active' }, in_flight: null, rollout: { phase: 'complete', ready_replicas: 2 } })
    expect((await ctx.request('GET', '/api/v1/serve/fraud/status/prod')).body.data).toEqual({ status: 'READY' })
    expect((await ctx.request('GET', '/api/v1/serve/fraud')).body.data.deployed_environments).toEqual(['prod'])
  })

  test('a second deploy keeps the previous revision active until the new one is, then supersedes it; empty variables reuse the previous ones', async () => {
    const response = await deploy('fraud', 'v1.1.0', { api_serve_deployment_config: { environment_variables: {} } })
    expect(response.status).toBe(201)
    expect(response.body.data.api_serve_deployment_config.environment_variables).toEqual({ MODEL_PATH: '/models/production' })
    await ctx.deployment.tracker.tick()
    expect((await revisions('fraud')).map((r) => r.status)).toEqual(['active', 'deploying'])
    completeRollout('fraud-prod')
    await ctx.deployment.tracker.tick()
    expect((await revisions('fraud')).map((r) => r.status)).toEqual(['superseded', 'active'])
  })

  test('PATCH of the infra config redeploys with the new settings as a revision with reason infra-update', async () => {
    const response = await ctx.request('PATCH', '/api/v1/serve/fraud/infra-config/prod', { api_serve_infra_config: { min_replicas: 5, max_replicas: 20 } })
    expect(response.status).toBe(200)
    const rows = await revisions('fraud')
    expect(rows.at(-1)).toMatchObject({ revision: 3, reason: 'infra-update', status: 'deploying' })
    expect(fake.get('HorizontalPodAutoscaler', NS, 'fraud-prod')).toMatchObject({ spec: { minReplicas: 5, maxReplicas: 20 } })
    completeRollout('fraud-prod', 5)
    await ctx.deployment.tracker.tick()
    expect((await revisions('fraud')).map((r) => r.status)).toEqual(['superseded', 'superseded', 'active'])
  })

  test('rollback makes a new revision from the last one active before the current, restoring its exact manifests', async () => {
    const response = await ctx.request('POST', '/api/v1/serve/fraud/rollback', { env: 'prod' })
    expect(response.status).toBe(201)
    expect(response.body.data).toMatchObject({ revision: 4, reason: 'rollback', rolled_back_from: 2, artifact_version: 'v1.1.0' })
    const rows = await revisions('fraud')
    expect(rows[3]?.manifests_yaml).toBe(rows[1]?.manifests_yaml as string)
    expect(fake.get('HorizontalPodAutoscaler', NS, 'fraud-prod')).toMatchObject({ spec: { minReplicas: 2, maxReplicas: 10 } })
    completeRollout('fraud-prod')
    await ctx.deployment.tracker.tick()
    const explicit = await ctx.request('POST', '/api/v1/serve/fraud/rollback', { env: 'prod', revision: 1 })
    expect(explicit.body.data).toMatchObject({ revision: 5, rolled_back_from: 1, artifact_version: 'v1.0.0' })
    expect((await revisions('fraud'))[4]?.manifests_yaml).toBe((await revisions('fraud'))[0]?.manifests_yaml as string)
    completeRollout('fraud-prod')
    await ctx.deployment.tracker.tick()
  })

  test('history is newest first and filterable; one revision comes with its manifests', async () => {
    const page = await ctx.request('GET', '/api/v1/serve/fraud/deployments?env=prod&limit=2')
    expect(page.status).toBe(200)
    expect(page.body.data.map((r: { revision: number }) => r.revision)).toEqual([5, 4])
    expect(page.body.pagination.total).toBe(5)
    const active = await ctx.request('GET', '/api/v1/serve/fraud/deployments?status=active')
    expect(active.body.data.map((r: { revision: number }) => r.revision)).toEqual([5])
    const one = await ctx.request('GET', '/api/v1/serve/fraud/deployments/2')
    expect(one.body.data.revision).toBe(2)
    expect(one.body.data.manifests).toContain('kind: Deployment')
    expect((await ctx.request('GET', '/api/v1/serve/fraud/deployments/99')).status).toBe(404)
  })

  test('preview returns the manifests as JSON or YAML without touching the cluster', async () => {
    fake.clearRequests()
    const json = await ctx.request('GET', '/api/v1/serve/fraud/manifests/prod?artifact_version=v1.1.0')
    expect(json.status).toBe(200)
    expect(json.body.status).toBe('SUCCESS')
    expect(json.body.data.map((o: { kind: string }) => o.kind)).toContain('HorizontalPodAutoscaler')
    const yaml = await ctx.request('GET', '/api/v1/serve/fraud/manifests/prod?artifact_version=v1.1.0', undefined, { accept: 'application/yaml' })
    expect(yaml.headers.get('content-type')).toContain('yaml')
    expect(String(yaml.body)).toContain('image: registry.example.com/fraud:v1.1.0')
    expect(fake.requests).toHaveLength(0)
  })

  test('dry run returns the manifests and a diff against the active revision; nothing applied or recorded', async () => {
    fake.clearRequests()
    const before = await revisions('fraud')
    const response = await deploy('fraud', 'v1.1.0', { dry_run: true })
    expect(response.status).toBe(200)
    expect(response.body.data).toMatchObject({ dry_run: true, active_revision: 5 })
    expect(response.body.data.diff).toContain('-')
    expect(response.body.data.diff).toMatch(/\n\+\s+image: registry\.example\.com\/fraud:v1\.1\.0\n/)
    expect(await revisions('fraud')).toEqual(before)
    expect(fake.requests).toHaveLength(0)
    expect(await locks()).toHaveLength(0)
  })

  test('undeploy removes the objects and marks the revision undeployed; twice is fine; the original path works', async () => {
    const response = await ctx.request('POST', '/api/v1/serve/fraud/undeploy', { env: 'prod' })
    expect(response.status).toBe(200)
    expect(response.body.data).toEqual({ serve_name: 'fraud', env: 'prod', undeployed_revision: 5 })
    expect(fake.get('Deployment', NS, 'fraud-prod')).toBeUndefined()
    expect((await revisions('fraud')).at(-1)?.status).toBe('undeployed')
    const again = await ctx.request('POST', '/api/v1/serve/fraud/undeploy/prod')
    expect(again.status).toBe(200)
    expect(again.body).toMatchObject({ message: 'Nothing to undeploy', data: { undeployed_revision: null } })
    expect((await ctx.request('GET', '/api/v1/serve/fraud/status/prod')).body.data.status).toBe('NOT_READY')
    expect(await ctx.query("select id from infra_configs")).not.toHaveLength(0)
  })

  test('every mutation is in the audit log with its revision', async () => {
    const rows = await ctx.query<{ action: string; summary: { revision?: number } }>("select action, summary from audit_log where resource_name = 'fraud' and action like '%deploy%' order by id")
    expect(rows.map((r) => r.action)).toContain('POST /api/v1/serve/:serve_name/deploy')
    expect(rows.map((r) => r.action)).toContain('POST /api/v1/serve/:serve_name/undeploy')
  })
})

describe('deploy — errors', () => {
  test('each precondition has its own answer', async () => {
    await setUpServe('errs')
    expect((await ctx.request('POST', '/api/v1/serve/nope/deploy', { env: 'prod', artifact_version: 'v1.0.0' })).status).toBe(404)
    expect((await ctx.request('POST', '/api/v1/serve/errs/deploy', { env: 'nowhere', artifact_version: 'v1.0.0' })).status).toBe(404)
    expect((await ctx.request('POST', '/api/v1/serve/errs/deploy', { env: 'prod', artifact_version: 'v9' })).status).toBe(404)
    await ctx.query("insert into artifacts (serve_id, version, source, status, created_at, updated_at) select id, 'v2-building', 'build', 'building', now(), now() from serves where name = 'errs'")
    const notReady = await ctx.request('POST', '/api/v1/serve/errs/deploy', { env: 'prod', artifact_version: 'v2-building' })
    expect(notReady.status).toBe(409)
    expect(notReady.body.code).toBe('ARTIFACT_NOT_READY')
    expect((await ctx.request('POST', '/api/v1/environment', environmentBody('staging', { namespace: NS }))).status).toBe(201)
    const noInfra = await ctx.request('POST', '/api/v1/serve/errs/deploy', { env: 'staging', artifact_version: 'v1.0.0' })
    expect(noInfra.status).toBe(409)
    expect(noInfra.body.code).toBe('INFRA_CONFIG_MISSING')
    const badVars = await deploy('errs', 'v1.0.0', { api_serve_deployment_config: { environment_variables: { 'BAD-NAME': 'x' } } })
    expect(badVars.status).toBe(422)
    expect(await revisions('errs')).toHaveLength(0)
    expect(await locks()).toHaveLength(0)
  })

  test('concurrent deploys of one serve: exactly one proceeds, the others get 409 naming it', async () => {
    const responses = await Promise.all(Array.from({ length: 10 }, () => deploy('errs', 'v1.0.0')))
    const statuses = responses.map((r) => r.status)
    expect(statuses.filter((s) => s === 201)).toHaveLength(1)
    expect(statuses.filter((s) => s === 409)).toHaveLength(9)
    expect(responses.find((r) => r.status === 409)?.body).toMatchObject({ code: 'CHANGE_IN_PROGRESS' })
    expect(responses.find((r) => r.status === 409)?.body.message).toContain('revision 1')
    expect(await revisions('errs')).toHaveLength(1)
    // (An undeploy or a rollback would interrupt it: test/api/placement.test.ts.)
    expect((await ctx.request('DELETE', '/api/v1/serve/errs')).status).toBe(409)
  })

  test('a failing rollout ends failed with its reason, releases the lock and leaves the active revision alone', async () => {
    fake.setStatus('Deployment', NS, 'errs-prod', {
      observedGeneration: 1,
      replicas: 1,
      updatedReplicas: 1,
      availableReplicas: 0,
      conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'ReplicaSet has timed out progressing.' }],
    })
    await ctx.deployment.tracker.tick()
    const [row] = await revisions('errs')
    expect(row?.status).toBe('failed')
    expect(row?.failure_reason).toContain('ProgressDeadlineExceeded')
    expect(await locks()).toHaveLength(0)
    expect((await ctx.request('GET', '/api/v1/serve/fraud/status/prod')).status).toBe(200)
  })

  test('a cluster that refuses the apply: 502, the revision failed with the reason, the retry works', async () => {
    // Apply stops at the first refused object (one attempt per request in these tests).
    fake.failNext({ method: 'PATCH', status: 500, message: 'etcdserver: request timed out' })
    const failed = await deploy('errs', 'v1.1.0')
    expect(failed.status).toBe(502)
    expect(failed.body.code).toBe('CLUSTER_FAILED')
    const rows = await revisions('errs')
    expect(rows.at(-1)).toMatchObject({ status: 'failed' })
    expect(rows.at(-1)?.failure_reason).toContain('etcdserver: request timed out')
    expect(await locks()).toHaveLength(0)
    const retried = await deploy('errs', 'v1.1.0')
    expect(retried.status).toBe(201)
  })

  test('a restart mid-rollout: a new process follows the rollout to its end', async () => {
    const restarted = createDeploymentRuntime({ ...ctx })
    completeRollout('errs-prod', 1)
    await restarted.tracker.tick()
    expect((await revisions('errs')).at(-1)?.status).toBe('active')
  })

  test('?wait= blocks until the rollout ends (200), or answers 504 with where it is', async () => {
    setTimeout(() => completeRollout('errs-prod', 1), 150)
    const waited = await deploy('errs', 'v1.0.0', {}, '?wait=5')
    expect(waited.status).toBe(200)
    expect(waited.body.data.status).toBe('active')
    const timedOut = await deploy('errs', 'v1.1.0', {}, '?wait=1')
    expect(timedOut.status).toBe(504)
    expect(timedOut.body.code).toBe('ROLLOUT_TIMEOUT')
  })

  test('rollback with nothing to roll back to → 409; to a revision of another environment → 404', async () => {
    await setUpServe('lonely')
    expect((await ctx.request('POST', '/api/v1/serve/lonely/rollback', { env: 'prod' })).status).toBe(409)
    expect((await ctx.request('POST', '/api/v1/serve/lonely/rollback', { env: 'prod', revision: 7 })).status).toBe(404)
  })
})

describe('deploy — security', () => {
  test('deploy, rollback and undeploy need the deploy scope; history needs read', async () => {
    const writer = await ctx.createToken(['read', 'write'])
    const auth = { authorization: `Bearer ${writer}` }
    expect((await ctx.request('POST', '/api/v1/serve/fraud/deploy', { env: 'prod', artifact_version: 'v1.0.0' }, auth)).status).toBe(403)
    expect((await ctx.request('POST', '/api/v1/serve/fraud/rollback', { env: 'prod' }, auth)).status).toBe(403)
    expect((await ctx.request('POST', '/api/v1/serve/fraud/undeploy', { env: 'prod' }, auth)).status).toBe(403)
    expect((await ctx.request('GET', '/api/v1/serve/fraud/deployments', undefined, auth)).status).toBe(200)
    expect((await ctx.request('POST', '/api/v1/serve/fraud/deploy', { env: 'prod', artifact_version: 'v1.0.0' }, { authorization: '' })).status).toBe(401)
  })

  test('the MLflow password never reaches a response, a log line, the audit log or a stored manifest', async () => {
    await Bun.sleep(20)
    const dump = JSON.stringify(await ctx.query('select * from deployments')) + JSON.stringify(await ctx.query('select * from audit_log'))
    expect(dump).not.toContain('mlflow-pw-do-not-leak')
    expect(ctx.logs.join('\n')).not.toContain('mlflow-pw-do-not-leak')
    const history = await ctx.request('GET', '/api/v1/serve/fraud/deployments/1')
    expect(JSON.stringify(history.body)).not.toContain('mlflow-pw-do-not-leak')
    expect((fake.get('Secret', NS, 'fraud-prod-mlflow') as { stringData?: { password?: string } } | undefined)?.stringData?.password ?? 'removed').toBeDefined()
  })
})

describe('deploy and scheduled scaling', () => {
  test('a deploy while a window is open renders the window bounds and records them as applied', async () => {
    const schedule = { timezone: 'UTC', windows: [{ name: 'all-day', start: '0 0 * * *', duration_minutes: 1440, min_replicas: 3, max_replicas: 4 }] }
    expect((await ctx.request('PUT', '/api/v1/serve/fraud/scaling-schedule/prod', schedule)).status).toBe(200)
    const response = await deploy('fraud', 'v1.0.0')
    expect(response.status).toBe(201)
    expect(fake.get('HorizontalPodAutoscaler', NS, 'fraud-prod')).toMatchObject({ spec: { minReplicas: 3, maxReplicas: 4 } })
    const [row] = await ctx.query<{ applied_min: number; applied_max: number }>('select applied_min, applied_max from scaling_schedules')
    expect(row).toMatchObject({ applied_min: 3, applied_max: 4 })
    // The revision keeps the infra config's own bounds as its base (the rollback above restored them).
    const stored = (await ctx.request('GET', '/api/v1/serve/fraud/infra-config/prod')).body.data.api_serve_infra_config
    expect(response.body.data.infra_snapshot).toMatchObject({ min_replicas: stored.min_replicas, max_replicas: stored.max_replicas })
    expect(stored).not.toMatchObject({ min_replicas: 3, max_replicas: 4 })
  })
})
