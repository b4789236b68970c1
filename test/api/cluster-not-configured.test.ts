/**
 * A first run without any cluster: no kubeconfig, no in-cluster service account. Changes that need a
 * cluster are refused up front with 503 CLUSTER_NOT_CONFIGURED naming what to set, and nothing about
 * them is recorded; what needs no cluster (preview, dry run, undeploy of nothing) works; /readyz says
 * which drivers are usable; an environment on DCM still deploys.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApp } from '../../src/app'
import { createClusterDrivers } from '../../src/cluster'
import { loadConfig } from '../../src/config'
import { createTestContext } from '../support/context'
import { FakeDcm } from '../support/fake-dcm'
import { FakeKubernetes } from '../support/fake-kubernetes'
import { environmentBody } from '../support/fixtures'

const home = mkdtempSync(join(tmpdir(), 'no-kubeconfig-'))
const dcm = new FakeDcm()
const fakeCluster = new FakeKubernetes()
afterAll(() => {
  rmSync(home, { recursive: true, force: true })
  dcm.stop()
  fakeCluster.stop()
})
const settings = { ENV: 'prod', DCM_URL: dcm.url, CLUSTER_REQUEST_ATTEMPTS: '1', DEFAULT_RUNTIME: 'registry.example.com/mlflow-runtime:1.4' }
// The driver's real credential lookup, pointed at an empty home and no KUBECONFIG.
const noCluster = createClusterDrivers(loadConfig(settings), { kubeconfigLocations: { home, inCluster: false } })
const ctx = await createTestContext(settings, { clusterDrivers: noCluster })

const count = async (table: string) => Number((await ctx.query<{ n: number }>(`select count(*) as n from ${table}`))[0]?.n)
const deployBody = { env: 'prod', artifact_version: 'v1', api_serve_deployment_config: { deployment_strategy: 'rolling', environment_variables: {} } }

function expectNotConfigured(response: { status: number; body: any }) {
  expect(response.status).toBe(503)
  expect(response.body.code).toBe('CLUSTER_NOT_CONFIGURED')
  for (const hint of ['environment prod', 'KUBECONFIG', 'service account', 'cluster_driver to "dcm"', 'DCM_URL']) expect(response.body.message).toContain(hint)
}

await ctx.request('POST', '/api/v1/environment', environmentBody('prod', { namespace: 'ml' }))
await ctx.request('POST', '/api/v1/serve', { name: 'fraud', type: 'api', description: '', space: '' })
await ctx.request('POST', '/api/v1/serve/fraud/infra-config/prod', {
  api_serve_infra_config: { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 2, node_capacity_type: 'spot' },
})
await ctx.request('POST', '/api/v1/artifact', { serve_name: 'fraud', version: 'v1', image: 'registry.example.com/fraud:v1' })

describe('without a cluster', () => {
  test('deploy → 503 CLUSTER_NOT_CONFIGURED with the fix, no revision, no lock, a warn log line', async () => {
    const response = await ctx.request('POST', '/api/v1/serve/fraud/deploy', deployBody)
    expectNotConfigured(response)
    expect(await count('deployments')).toBe(0)
    expect(await count('change_locks')).toBe(0)
    const warned = ctx.logs.map((line) => JSON.parse(line)).find((line) => line.code === 'CLUSTER_NOT_CONFIGURED')
    expect(warned).toMatchObject({ level: 'warn', status: 503, request_id: response.headers.get('x-request-id') })
  })

  test('rollback to a named revision → 404 before any cluster question (there is none)', async () => {
    expect((await ctx.request('POST', '/api/v1/serve/fraud/rollback', { env: 'prod', revision: 1 })).status).toBe(404)
  })

  test('deploy-model → 503 before the serve, infra config or artifact is created', async () => {
    const response = await ctx.request('POST', '/api/v1/serve/deploy-model', { serve_name: 'new-model', model_uri: 'models:/m/1', env: 'prod' })
    expectNotConfigured(response)
    expect(await ctx.query("select * from serves where name = 'new-model'")).toEqual([])
    expect(await count('artifacts')).toBe(1)
  })

  test('what needs no cluster works: manifest preview, dry run, undeploy of nothing', async () => {
    const preview = await ctx.request('GET', '/api/v1/serve/fraud/manifests/prod?artifact_version=v1')
    expect(preview.status).toBe(200)
    const dryRun = await ctx.request('POST', '/api/v1/serve/fraud/deploy', { ...deployBody, dry_run: true })
    expect(dryRun.status).toBe(200)
    expect(dryRun.body.data.manifests).toContain('kind: Deployment')
    expect((await ctx.request('POST', '/api/v1/serve/fraud/undeploy', { env: 'prod' })).status).toBe(200)
    expect(await count('deployments')).toBe(0)
  })

  test('undeploy of something live → 503, the revision stays active', async () => {
    // Deployed earlier by a replica that had a cluster (same database).
    const withCluster = createApp({
      config: ctx.config,
      database: ctx.database,
      log: ctx.log,
      clusterDrivers: createClusterDrivers(ctx.config, { kubeconfigLocations: fakeCluster.kubeconfigLocations() }),
    })
    const deployed = await withCluster.handle(
      new Request('http://localhost/api/v1/serve/fraud/deploy', {
        method: 'POST',
        headers: { authorization: `Bearer ${ctx.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(deployBody),
      }),
    )
    expect(deployed.status).toBe(201)
    const response = await ctx.request('POST', '/api/v1/serve/fraud/undeploy', { env: 'prod' })
    expectNotConfigured(response)
    expect(await ctx.query('select status from deployments')).toEqual([{ status: 'deploying' }])
    expect(fakeCluster.get('Deployment', 'ml', 'fraud-prod')).toBeDefined()
  })

  test('/readyz is 200 and says the kubernetes driver is not usable, and why', async () => {
    const response = await ctx.request('GET', '/readyz')
    expect(response.status).toBe(200)
    expect(response.body.data.database).toBe('ok')
    expect(response.body.data.cluster_drivers.kubernetes).toMatchObject({ usable: false })
    expect(response.body.data.cluster_drivers.kubernetes.detail).toContain('KUBECONFIG')
    expect(response.body.data.cluster_drivers.dcm).toEqual({ usable: true, detail: `DCM at ${dcm.url} (DCM_URL)` })
  })

  test('an environment on DCM deploys: the refusal is about the kubernetes driver only', async () => {
    await ctx.request('POST', '/api/v1/environment', environmentBody('dcm-env', { namespace: 'ml', cluster_driver: 'dcm' }))
    await ctx.request('POST', '/api/v1/serve/fraud/infra-config/dcm-env', {
      api_serve_infra_config: { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 2, node_capacity_type: 'spot' },
    })
    const response = await ctx.request('POST', '/api/v1/serve/fraud/deploy', { ...deployBody, env: 'dcm-env' })
    expect(response.status).toBe(201)
    expect(dcm.requests.map((r) => r.path)).toContain('/resource-instance/start')
  })
})
