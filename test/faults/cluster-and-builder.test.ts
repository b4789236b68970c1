/**
 * The cluster and the Artifact Builder hang or answer 500: calls give up within their timeout and
 * answer 502, the revision ends `failed` with the reason (the active one keeps serving), no change
 * lock is left behind, no artifact row is written for a build that never started, and once the
 * dependency is back the same call succeeds. 127.0.0.1 only (fake servers); bounded in time.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { createTestContext, type TestResponse } from '../support/context'
import { startFakeArtifactBuilder } from '../support/fake-artifact-builder'
import { FakeKubernetes } from '../support/fake-kubernetes'
import { environmentBody } from '../support/fixtures'

const CLUSTER_TIMEOUT_MS = 300
const BUILDER_TIMEOUT_MS = 300
const fake = new FakeKubernetes()
const builder = startFakeArtifactBuilder()
afterAll(() => fake.stop())
const settings = {
  ENV: 'prod',
  ROLLOUT_POLL_INTERVAL_MS: '50',
  CLUSTER_REQUEST_ATTEMPTS: '1',
  CLUSTER_REQUEST_TIMEOUT_MS: String(CLUSTER_TIMEOUT_MS),
  ARTIFACT_BUILDER_URL: builder.url,
  ARTIFACT_BUILDER_TIMEOUT_MS: String(BUILDER_TIMEOUT_MS),
  GITHUB_TOKEN: 'ghp_fault_test_token',
}
const ctx = await createTestContext(settings, {
  clusterDrivers: fake.drivers(settings),
})
const NS = 'ml-serve'

/** Every response of this file: none may be a 5xx other than 502/503/504. */
const responses: TestResponse[] = []
let faults = 0
const call = async (method: string, path: string, body?: unknown) => {
  const response = await ctx.request(method, path, body)
  responses.push(response)
  return response
}
const timed = async (run: () => Promise<TestResponse>) => {
  const started = performance.now()
  const response = await run()
  return { response, ms: performance.now() - started }
}

interface Row {
  revision: number
  status: string
  failure_reason: string | null
}
const revisions = () => ctx.query<Row>("select d.revision, d.status, d.failure_reason from deployments d join serves s on s.id = d.serve_id where s.name = 'fraud' order by d.revision")
const locks = () => ctx.query('select * from change_locks')
const deploy = (version: string) => call('POST', '/api/v1/serve/fraud/deploy', { env: 'prod', artifact_version: version })
function completeRollout() {
  const generation = Number(fake.get('Deployment', NS, 'fraud-prod')?.metadata.generation ?? 1)
  fake.setStatus('Deployment', NS, 'fraud-prod', { observedGeneration: generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 })
}

await call('POST', '/api/v1/environment', environmentBody('prod', { namespace: NS }))
await call('POST', '/api/v1/serve', { name: 'fraud', type: 'api' })
await call('POST', '/api/v1/serve/fraud/infra-config/prod', {
  api_serve_infra_config: { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 2, node_capacity_type: 'spot' },
})
for (const version of ['v1', 'v2']) await call('POST', '/api/v1/artifact', { serve_name: 'fraud', version, image: `registry.example.com/fraud:${version}` })

describe('the cluster hangs or fails', () => {
  test('a healthy first deploy becomes active', async () => {
    expect((await deploy('v1')).status).toBe(201)
    completeRollout()
    await ctx.deployment.tracker.tick()
    expect((await revisions()).map((r) => r.status)).toEqual(['active'])
  })

  test('the API server hangs: 502 within the timeout, the revision failed with a timeout reason, no lock; the retry after recovery → 201', async () => {
    fake.setDelay(CLUSTER_TIMEOUT_MS * 3)
    faults++
    const { response, ms } = await timed(() => deploy('v2'))
    fake.setDelay(0)
    // The request the service gave up on still lands late, as on a real API server: let it, so
    // that it cannot interleave with what follows.
    await fake.idle()
    expect(response.status).toBe(502)
    expect(response.body.code).toBe('CLUSTER_FAILED')
    expect(ms).toBeLessThan(CLUSTER_TIMEOUT_MS * 5)
    const rows = await revisions()
    expect(rows.map((r) => r.status)).toEqual(['active', 'failed'])
    expect(rows[1]?.failure_reason).toMatch(/did not answer within 300 ms|timeout/i)
    expect(await locks()).toHaveLength(0)
    // Nothing is lost: the active revision is still the one serving.
    expect((await call('GET', '/api/v1/serve/fraud/deployment/prod')).body.data.active.revision).toBe(1)

    const retried = await deploy('v2')
    expect(retried.status).toBe(201)
    completeRollout()
    await ctx.deployment.tracker.tick()
    expect((await revisions()).map((r) => r.status)).toEqual(['superseded', 'failed', 'active'])
  })

  test('the API server answers 500: 502, the revision failed with the cluster message, no lock; the retry → 201', async () => {
    fake.failNext({ status: 500, message: 'etcdserver: leader changed' })
    faults++
    const { response, ms } = await timed(() => deploy('v1'))
    expect(response.status).toBe(502)
    expect(response.body.code).toBe('CLUSTER_FAILED')
    expect(ms).toBeLessThan(CLUSTER_TIMEOUT_MS * 5)
    const rows = await revisions()
    expect(rows.at(-1)?.status).toBe('failed')
    expect(rows.at(-1)?.failure_reason).toContain('etcdserver: leader changed')
    expect(await locks()).toHaveLength(0)

    const retried = await deploy('v1')
    expect(retried.status).toBe(201)
    completeRollout()
    await ctx.deployment.tracker.tick()
    expect((await revisions()).at(-1)?.status).toBe('active')
  })

  test('undeploy against a failing API server: 502, no lock, the revision still active; the retry → 200', async () => {
    fake.failNext({ method: 'DELETE', status: 500, message: 'etcdserver: request timed out' })
    faults++
    const response = await call('POST', '/api/v1/serve/fraud/undeploy', { env: 'prod' })
    expect(response.status).toBe(502)
    expect(await locks()).toHaveLength(0)
    expect((await revisions()).at(-1)?.status).toBe('active')
    const retried = await call('POST', '/api/v1/serve/fraud/undeploy', { env: 'prod' })
    expect(retried.status).toBe(200)
    expect((await revisions()).at(-1)?.status).toBe('undeployed')
  })
})

describe('the Artifact Builder hangs or fails', () => {
  const build = (version: string) => call('POST', '/api/v1/artifact', { serve_name: 'fraud', version, github_repo_url: 'https://github.com/myorg/fraud', branch: 'main' })
  const artifactRows = (version: string) => ctx.query("select a.id from artifacts a join serves s on s.id = a.serve_id where s.name = 'fraud' and a.version = ?", [version])

  test('the builder hangs: 502 after its timeout, no artifact row; the retry after recovery → 201', async () => {
    builder.startMode = 'hang'
    faults++
    const { response, ms } = await timed(() => build('v3'))
    builder.startMode = 'ok'
    expect(response.status).toBe(502)
    expect(response.body.code).toBe('DEPENDENCY_FAILED')
    expect(ms).toBeLessThan(BUILDER_TIMEOUT_MS * 5)
    expect(await artifactRows('v3')).toHaveLength(0)
    expect((await build('v3')).status).toBe(201)
    expect(await artifactRows('v3')).toHaveLength(1)
  })

  test('the builder answers 500: 502 after bounded retries, no artifact row; the retry after recovery → 201', async () => {
    builder.startMode = 'error500'
    faults++
    const response = await build('v4')
    builder.startMode = 'ok'
    expect(response.status).toBe(502)
    expect(response.body.code).toBe('DEPENDENCY_FAILED')
    expect(await artifactRows('v4')).toHaveLength(0)
    expect((await build('v4')).status).toBe(201)
  })

  test('counts: no 5xx other than 502/503/504', () => {
    const gateway = responses.filter((r) => [502, 503, 504].includes(r.status)).length
    const other5xx = responses.filter((r) => r.status >= 500 && ![502, 503, 504].includes(r.status))
    console.log(
      `cluster and builder faults: ${responses.length} requests, ${faults} faults injected (cluster hang, cluster 500 on apply and on delete, builder hang, builder 500), ${gateway}×502, ${other5xx.length} other 5xx`,
    )
    expect(other5xx).toEqual([])
    expect(gateway).toBe(faults)
  })
})
