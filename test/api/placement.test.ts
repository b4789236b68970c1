/**
 * The placement state machine (src/modules/placement/transitions.ts) on the sequences that went wrong
 * before it had one owner: each reproduces what a CI pipeline or an on-call engineer does in the
 * first hour, against MySQL and the fake Kubernetes API.
 */
import { afterAll, beforeEach, describe, expect, test } from 'bun:test'
import { transitionTableMarkdown } from '../../src/modules/placement/transitions'
import { createTestContext } from '../support/context'
import { FakeKubernetes } from '../support/fake-kubernetes'
import { environmentBody } from '../support/fixtures'

const fake = new FakeKubernetes()
afterAll(() => fake.stop())
const settings = { ENV: 'prod', CLUSTER_REQUEST_ATTEMPTS: '1', CLUSTER_REQUEST_TIMEOUT_MS: '1000', DEFAULT_RUNTIME: 'registry.example.com/mlflow-runtime:1.0' }
const ctx = await createTestContext(settings, { clusterDrivers: fake.drivers(settings) })
const NS = 'ml'
await ctx.request('POST', '/api/v1/environment', environmentBody('prod', { namespace: NS }))

interface Revision {
  revision: number
  status: string
  reason: string
  failure_reason: string | null
}
const revisions = (serve: string) =>
  ctx.query<Revision>('select d.revision, d.status, d.reason, d.failure_reason from deployments d join serves s on s.id = d.serve_id where s.name = ? order by d.revision', [serve])
const locks = (serve: string) => ctx.query('select l.* from change_locks l join serves s on s.id = l.serve_id where s.name = ?', [serve])
const owned = (serve: string) => fake.list().filter((o) => o.metadata.labels?.['darwin.ml-serve/serve'] === serve)
const cpuOf = (serve: string) =>
  (fake.get('Deployment', NS, `${serve}-prod`)?.spec as { template: { spec: { containers: { resources: { requests: { cpu: string } } }[] } } } | undefined)?.template.spec.containers[0]?.resources.requests.cpu

function completeRollout(serve: string) {
  const generation = Number(fake.get('Deployment', NS, `${serve}-prod`)?.metadata.generation ?? 1)
  fake.setStatus('Deployment', NS, `${serve}-prod`, { observedGeneration: generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 })
}

const infra = { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 3, node_capacity_type: 'spot' }
async function setUpServe(name: string) {
  expect((await ctx.request('POST', '/api/v1/serve', { name, type: 'api' })).status).toBe(201)
  expect((await ctx.request('POST', `/api/v1/serve/${name}/infra-config/prod`, { api_serve_infra_config: infra })).status).toBe(201)
  for (const version of ['v1', 'v2']) {
    expect((await ctx.request('POST', '/api/v1/artifact', { serve_name: name, version, image: `registry.example.com/${name}:${version}` })).status).toBe(201)
  }
}
const deploy = (serve: string, version: string) => ctx.request('POST', `/api/v1/serve/${serve}/deploy`, { env: 'prod', artifact_version: version })
const patchInfra = (serve: string, fields: Record<string, unknown>) => ctx.request('PATCH', `/api/v1/serve/${serve}/infra-config/prod`, { api_serve_infra_config: fields })
const storedInfra = async (serve: string) => (await ctx.request('GET', `/api/v1/serve/${serve}/infra-config/prod`)).body.data.api_serve_infra_config

beforeEach(() => fake.clearRequests())

describe('the transition table', () => {
  test('the README holds the table the code decides from', async () => {
    const readme = await Bun.file(new URL('../../README.md', import.meta.url)).text()
    expect(readme.includes(transitionTableMarkdown())).toBe(true)
  })
})

describe('an infra PATCH during a rollout supersedes it', () => {
  test('1. deploy, then at once PATCH: 200, the new config runs in a new revision, the first is cancelled, audited once as a success', async () => {
    await setUpServe('seq1')
    expect((await deploy('seq1', 'v1')).status).toBe(201)
    const patched = await patchInfra('seq1', { cores: 2 })
    expect(patched.status).toBe(200)
    expect(patched.body.data).toMatchObject({ started_revision: 2, api_serve_infra_config: { cores: 2 } })
    expect(await revisions('seq1')).toMatchObject([
      { revision: 1, status: 'cancelled', reason: 'deploy', failure_reason: 'interrupted by revision 2 (infra-update)' },
      { revision: 2, status: 'deploying', reason: 'infra-update' },
    ])
    expect(cpuOf('seq1')).toBe('2')
    const audit = await ctx.query<{ outcome: string; status_code: number }>("select outcome, status_code from audit_log where action like 'PATCH %' and resource_name = 'seq1'")
    expect(audit).toEqual([{ outcome: 'success', status_code: 200 }])
    completeRollout('seq1')
    await ctx.deployment.tracker.tick()
    expect((await revisions('seq1')).at(-1)?.status).toBe('active')
    expect(await locks('seq1')).toEqual([])
  })

  test('2. PATCH while a one-click rollout is in flight (nothing active yet): 200 and the cluster gets the new cores', async () => {
    const model = await ctx.request('POST', '/api/v1/serve/deploy-model', { serve_name: 'seq2', model_uri: 'models:/fraud/1', env: 'prod', cores: 1, memory: 2 })
    expect(model.status).toBe(201)
    const patched = await patchInfra('seq2', { cores: 3 })
    expect(patched.status).toBe(200)
    expect(patched.body.data.started_revision).toBe(model.body.data.revision + 1)
    expect(cpuOf('seq2')).toBe('3')
    const rows = await revisions('seq2')
    expect(rows.map((r) => [r.reason, r.status])).toEqual([
      ['one-click', 'cancelled'],
      ['infra-update', 'deploying'],
    ])
  })

  test('6. a PATCH that changes nothing starts nothing; the answer names no revision', async () => {
    const unchanged = await patchInfra('seq2', { cores: 3 })
    expect(unchanged.status).toBe(200)
    expect(unchanged.body.data.started_revision).toBeNull()
    expect(await revisions('seq2')).toHaveLength(2)
  })
})

describe('undeploy and rollback interrupt a rollout', () => {
  test('3a. deploy, then undeploy at once: 200, the cluster is empty, the rollout cancelled, no lock', async () => {
    await setUpServe('seq3')
    expect((await deploy('seq3', 'v1')).status).toBe(201)
    const undeployed = await ctx.request('POST', '/api/v1/serve/seq3/undeploy', { env: 'prod' })
    expect(undeployed.status).toBe(200)
    expect(owned('seq3')).toEqual([])
    expect(await revisions('seq3')).toMatchObject([{ revision: 1, status: 'cancelled', failure_reason: 'interrupted by an undeploy' }])
    expect(await locks('seq3')).toEqual([])
    // Nothing is left to remove: the second undeploy calls no cluster.
    fake.clearRequests()
    expect((await ctx.request('POST', '/api/v1/serve/seq3/undeploy', { env: 'prod' })).status).toBe(200)
    expect(fake.requests).toEqual([])
  })

  test('3b. active v1, deploy v2, then roll back at once: v1 runs again, v2 is cancelled', async () => {
    expect((await deploy('seq3', 'v1')).status).toBe(201)
    completeRollout('seq3')
    await ctx.deployment.tracker.tick()
    expect((await deploy('seq3', 'v2')).status).toBe(201)
    const rolledBack = await ctx.request('POST', '/api/v1/serve/seq3/rollback', { env: 'prod', revision: 2 })
    expect(rolledBack.status).toBe(201)
    const rows = await revisions('seq3')
    expect(rows.slice(-2)).toMatchObject([
      { revision: 3, status: 'cancelled' },
      { revision: 4, status: 'deploying', reason: 'rollback' },
    ])
    expect((fake.get('Deployment', NS, 'seq3-prod')?.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers[0]?.image).toBe('registry.example.com/seq3:v1')
    // A deploy still waits for the rollout: one deploy at a time.
    const refused = await deploy('seq3', 'v2')
    expect(refused.status).toBe(409)
    expect(refused.body.code).toBe('CHANGE_IN_PROGRESS')
  })
})

describe('what was never applied needs no cluster', () => {
  test('4. undeploy after a first deploy whose apply failed: 200 without a cluster call', async () => {
    await setUpServe('seq4')
    fake.failNext({ method: 'PATCH', status: 500, message: 'etcdserver: leader changed', times: 5 })
    expect((await deploy('seq4', 'v1')).status).toBe(502)
    fake.clearFailures()
    fake.clearRequests()
    const undeployed = await ctx.request('POST', '/api/v1/serve/seq4/undeploy', { env: 'prod' })
    expect(undeployed.status).toBe(200)
    expect(undeployed.body.data.undeployed_revision).toBeNull()
    expect(fake.requests).toEqual([])
    expect(await locks('seq4')).toEqual([])
  })
})

describe('rollback', () => {
  test('5a. to a failed revision: 409 REVISION_FAILED unless "force": true', async () => {
    // seq4's revision 1 failed to apply.
    const refused = await ctx.request('POST', '/api/v1/serve/seq4/rollback', { env: 'prod', revision: 1 })
    expect(refused.status).toBe(409)
    expect(refused.body.code).toBe('REVISION_FAILED')
    expect(await revisions('seq4')).toHaveLength(1)
    const forced = await ctx.request('POST', '/api/v1/serve/seq4/rollback', { env: 'prod', revision: 1, force: true })
    expect(forced.status).toBe(201)
  })

  test('5b. after a rollback the stored infra config is the running revision\'s, and the restore is audited', async () => {
    await setUpServe('seq5')
    expect((await deploy('seq5', 'v1')).status).toBe(201)
    completeRollout('seq5')
    await ctx.deployment.tracker.tick()
    expect((await patchInfra('seq5', { cores: 4, max_replicas: 6 })).body.data.started_revision).toBe(2)
    completeRollout('seq5')
    await ctx.deployment.tracker.tick()
    expect(await storedInfra('seq5')).toMatchObject({ cores: 4, max_replicas: 6 })
    const rolledBack = await ctx.request('POST', '/api/v1/serve/seq5/rollback', { env: 'prod' })
    expect(rolledBack.status).toBe(201)
    expect(rolledBack.body.data).toMatchObject({ rolled_back_from: 1, infra_snapshot: { cores: 1, max_replicas: 3 } })
    expect(await storedInfra('seq5')).toMatchObject({ cores: 1, max_replicas: 3 })
    expect(cpuOf('seq5')).toBe('1')
    const [entry] = await ctx.query<{ summary: { infra_config?: { cores: number } } }>(
      "select summary from audit_log where action like 'POST %rollback' and resource_name = 'seq5' order by id desc limit 1",
    )
    expect(entry?.summary.infra_config).toMatchObject({ cores: 1 })
  })
})

describe('a lock never outlives its revision', () => {
  test('7. 20 concurrent deploys to an unreachable cluster: 502s and 409s only, no lock left, the retry works', async () => {
    await setUpServe('seq7')
    fake.failNext({ method: 'PATCH', status: 503, message: 'the API server is shutting down', times: 100 })
    const answers = await Promise.all(Array.from({ length: 20 }, () => deploy('seq7', 'v1')))
    const statuses = answers.map((a) => a.status)
    expect(statuses.filter((s) => s !== 502 && s !== 409)).toEqual([])
    expect(statuses).toContain(502)
    expect(await locks('seq7')).toEqual([])
    expect((await revisions('seq7')).every((r) => r.status === 'failed')).toBe(true)
    fake.clearFailures()
    expect((await deploy('seq7', 'v1')).status).toBe(201)
  })
})

describe('found by the model-based test (test/model/placement.model.test.ts)', () => {
  /** A deploy or rollback that started a revision: 201, rolling out. */
  const rollingOut = (answer: { status: number; body: any }) => {
    expect(answer.status).toBe(201)
    expect(answer.body.data.status).toBe('deploying')
    return answer.body.data.revision as number
  }
  const manifestsOf = async (serve: string, revision: number) => (await ctx.request('GET', `/api/v1/serve/${serve}/deployments/${revision}`)).body.data.manifests as string

  test('8. an infra PATCH or a rollback whose apply fails leaves the stored config as it was: the same PATCH, retried, redeploys', async () => {
    await setUpServe('seq8')
    rollingOut(await deploy('seq8', 'v1'))
    completeRollout('seq8')
    await ctx.deployment.tracker.tick()
    fake.failNext({ method: 'PATCH', status: 500, message: 'etcdserver: leader changed' })
    const failed = await patchInfra('seq8', { cores: 2 })
    fake.clearFailures()
    expect([failed.status, failed.body.code]).toEqual([502, 'CLUSTER_FAILED'])
    // Before: the config stayed stored, so the retry "changed nothing" (started_revision null) and cores 2 never ran.
    expect(await storedInfra('seq8')).toMatchObject({ cores: 1 })
    const retried = await patchInfra('seq8', { cores: 2 })
    expect(retried.status).toBe(200)
    expect(retried.body.data.started_revision).toBe(3)
    expect(cpuOf('seq8')).toBe('2')
    completeRollout('seq8')
    await ctx.deployment.tracker.tick()

    // A rollback stores the restored revision's config: a failed one puts it back as well.
    fake.failNext({ method: 'PATCH', status: 503, message: 'the API server is shutting down' })
    const rollback = await ctx.request('POST', '/api/v1/serve/seq8/rollback', { env: 'prod', revision: 1 })
    fake.clearFailures()
    expect([rollback.status, rollback.body.code]).toEqual([502, 'CLUSTER_FAILED'])
    expect(await storedInfra('seq8')).toMatchObject({ cores: 2 })
    expect(await locks('seq8')).toEqual([])
  })

  test('9. a rollback to a rollback gives back its manifests byte for byte (they carry the number of the revision first restored)', async () => {
    await setUpServe('seq9')
    for (const version of ['v1', 'v2']) {
      rollingOut(await deploy('seq9', version))
      completeRollout('seq9')
      await ctx.deployment.tracker.tick()
    }
    const third = rollingOut(await ctx.request('POST', '/api/v1/serve/seq9/rollback', { env: 'prod' })) // to 1
    completeRollout('seq9')
    await ctx.deployment.tracker.tick()
    const fourth = rollingOut(await ctx.request('POST', '/api/v1/serve/seq9/rollback', { env: 'prod', revision: third }))
    expect(await manifestsOf('seq9', third)).toBe(await manifestsOf('seq9', 1))
    // Before: revision 4 was rendered with the number 3, so its pod template differed from revision 3's.
    expect(await manifestsOf('seq9', fourth)).toBe(await manifestsOf('seq9', third))
    const template = (fake.get('Deployment', NS, 'seq9-prod')?.spec as { template: { metadata: { annotations: Record<string, string> } } }).template
    expect(template.metadata.annotations['darwin.ml-serve/revision']).toBe('1')
  })
})
