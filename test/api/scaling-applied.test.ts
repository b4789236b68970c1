/**
 * A schedule's `applied` says what the cluster has: a schedule created after a deploy reports the
 * bounds that deploy applied (before, it answered null until the next tick).
 */
import { afterAll, expect, test } from 'bun:test'
import { createTestContext } from '../support/context'
import { FakeKubernetes } from '../support/fake-kubernetes'
import { environmentBody } from '../support/fixtures'

const fake = new FakeKubernetes()
afterAll(() => fake.stop())
const settings = { ENV: 'prod', CLUSTER_REQUEST_ATTEMPTS: '1' }
const ctx = await createTestContext(settings, { clusterDrivers: fake.drivers(settings) })

test('PUT scaling-schedule right after a deploy answers the bounds the deploy applied', async () => {
  await ctx.request('POST', '/api/v1/environment', environmentBody('prod', { namespace: 'ml' }))
  await ctx.request('POST', '/api/v1/serve', { name: 'fraud', type: 'api' })
  await ctx.request('POST', '/api/v1/serve/fraud/infra-config/prod', {
    api_serve_infra_config: { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 2, max_replicas: 10, node_capacity_type: 'spot' },
  })
  await ctx.request('POST', '/api/v1/artifact', { serve_name: 'fraud', version: 'v1', image: 'registry.example.com/fraud:v1' })
  const deployed = await ctx.request('POST', '/api/v1/serve/fraud/deploy', { env: 'prod', artifact_version: 'v1' })
  expect(deployed.status).toBe(201)
  const generation = Number(fake.get('Deployment', 'ml', 'fraud-prod')?.metadata.generation)
  fake.setStatus('Deployment', 'ml', 'fraud-prod', { observedGeneration: generation, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 })
  await ctx.deployment.tracker.tick()
  expect((await ctx.request('GET', '/api/v1/serve/fraud/deployment/prod')).body.data.active.revision).toBe(deployed.body.data.revision)

  const night = { name: 'night', start: '0 22 * * *', end: '0 6 * * *', min_replicas: 1, max_replicas: 2 }
  const put = await ctx.request('PUT', '/api/v1/serve/fraud/scaling-schedule/prod', { timezone: 'UTC', windows: [night] })
  expect(put.status).toBe(200)
  expect(put.body.data.applied).toEqual({ min: 2, max: 10 })
  expect((await ctx.request('GET', '/api/v1/serve/fraud/scaling-schedule/prod')).body.data.applied).toEqual({ min: 2, max: 10 })
})

test('a schedule for a serve never deployed has nothing applied', async () => {
  await ctx.request('POST', '/api/v1/serve', { name: 'idle', type: 'api' })
  await ctx.request('POST', '/api/v1/serve/idle/infra-config/prod', {
    api_serve_infra_config: { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 3, node_capacity_type: 'spot' },
  })
  const night = { name: 'night', start: '0 22 * * *', end: '0 6 * * *', min_replicas: 1, max_replicas: 2 }
  const put = await ctx.request('PUT', '/api/v1/serve/idle/scaling-schedule/prod', { timezone: 'UTC', windows: [night] })
  expect(put.status).toBe(200)
  expect(put.body.data.applied).toBeNull()
})
