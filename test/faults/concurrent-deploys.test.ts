/**
 * 50 concurrent deploys of one serve: exactly one proceeds (201), the other 49 get 409
 * CHANGE_IN_PROGRESS, and the database holds one in-flight revision and one change lock.
 * 127.0.0.1 only (the fake Kubernetes API); bounded in time.
 */
import { afterAll, expect, test } from 'bun:test'
import { createTestContext } from '../support/context'
import { FakeKubernetes } from '../support/fake-kubernetes'
import { environmentBody } from '../support/fixtures'

const CONCURRENT = 50
const fake = new FakeKubernetes()
afterAll(() => fake.stop())
const settings = { ENV: 'prod', CLUSTER_REQUEST_ATTEMPTS: '1', CLUSTER_REQUEST_TIMEOUT_MS: '5000' }
const ctx = await createTestContext(settings, {
  clusterDrivers: fake.drivers(settings),
})

for (const [path, body] of [
  ['/api/v1/environment', environmentBody('prod', { namespace: 'ml-serve' })],
  ['/api/v1/serve', { name: 'fraud', type: 'api' }],
  ['/api/v1/serve/fraud/infra-config/prod', { api_serve_infra_config: { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 2, node_capacity_type: 'spot' } }],
  ['/api/v1/artifact', { serve_name: 'fraud', version: 'v1', image: 'registry.example.com/fraud:v1' }],
] as const) {
  const response = await ctx.request('POST', path, body)
  if (response.status !== 201) throw new Error(`setting up ${path}: ${response.status} ${JSON.stringify(response.body)}`)
}

test(`${CONCURRENT} concurrent deploys of one serve: one 201, the rest 409, one in-flight revision and one lock`, async () => {
  const responses = await Promise.all(
    Array.from({ length: CONCURRENT }, () => ctx.request('POST', '/api/v1/serve/fraud/deploy', { env: 'prod', artifact_version: 'v1' })),
  )
  const statuses = responses.map((r) => r.status)
  const accepted = statuses.filter((s) => s === 201).length
  const conflicts = responses.filter((r) => r.status === 409 && r.body?.code === 'CHANGE_IN_PROGRESS')
  const serverErrors = statuses.filter((s) => s >= 500).length
  const revisions = await ctx.query<{ revision: number; status: string }>('select revision, status from deployments')
  const locks = await ctx.query('select * from change_locks')
  console.log(
    `concurrent deploys: ${CONCURRENT} requests at once, ${accepted}×201, ${conflicts.length}×409 CHANGE_IN_PROGRESS, ${serverErrors} 5xx; database: ${revisions.filter((r) => r.status === 'deploying').length} in-flight revision, ${locks.length} change lock`,
  )
  expect(accepted).toBe(1)
  expect(conflicts).toHaveLength(CONCURRENT - 1)
  expect(serverErrors).toBe(0)
  // Most refusals name the revision in flight; a request that lost the race on the lock row five
  // times (deadlock or duplicate key under this much contention) is refused without naming it.
  expect(conflicts.some((r) => String(r.body.message).includes('revision 1'))).toBe(true)
  expect(revisions).toEqual([{ revision: 1, status: 'deploying' }])
  expect(locks).toHaveLength(1)
  // Only the winner touched the cluster: one Deployment, at generation 1.
  expect(fake.list('Deployment').map((d) => [d.metadata.name, d.metadata.generation])).toEqual([['fraud-prod', 1]])
}, 60_000)
