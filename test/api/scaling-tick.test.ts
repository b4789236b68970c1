/**
 * The scaling tick on MySQL and the fake Kubernetes API: what it patches, what it records, that it
 * is quiet when nothing changes, and that the lease makes replicas act once.
 */
import { afterAll, beforeEach, describe, expect, test } from 'bun:test'
import { mysqlDriver } from '../../src/config'
import { connectDatabase } from '../../src/db/client'
import { tryAcquire } from '../../src/lib/lease'
import { createScalingScheduler } from '../../src/modules/scaling/worker'
import { SCALING_LEASE } from '../../src/modules/scaling/scheduler'
import { createTestContext } from '../support/context'
import { FakeKubernetes } from '../support/fake-kubernetes'
import { environmentBody } from '../support/fixtures'
import { insertActiveDeployment } from '../support/scaling'

const fake = new FakeKubernetes()
afterAll(() => fake.stop())
const clusterDrivers = fake.drivers({ ENV: 'test', CLUSTER_REQUEST_ATTEMPTS: '1' })
const ctx = await createTestContext({}, { clusterDrivers })
// Two replicas of the control plane: their own pools on the same database.
const replicaA = connectDatabase({ driver: mysqlDriver(), url: ctx.url, poolSize: 3 })
const replicaB = connectDatabase({ driver: mysqlDriver(), url: ctx.url, poolSize: 3 })
afterAll(async () => void (await Promise.all([replicaA.close(), replicaB.close()])))

const NAMESPACE = 'ml-serve'
const MINUTE = 60_000
const night = { name: 'night', start: '0 22 * * *', end: '0 6 * * *', min_replicas: 1, max_replicas: 2 }
const api = { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 3, max_replicas: 10, node_capacity_type: 'spot' }

await ctx.request('POST', '/api/v1/environment', environmentBody('prod', { namespace: NAMESPACE }))
/** A deployed api serve with a night window (22:00–06:00 Berlin), and its HPA in the fake cluster. */
async function deployedServe(name: string) {
  await ctx.request('POST', '/api/v1/serve', { name, type: 'api' })
  await ctx.request('POST', `/api/v1/serve/${name}/infra-config/prod`, { api_serve_infra_config: api })
  await ctx.request('PUT', `/api/v1/serve/${name}/scaling-schedule/prod`, { timezone: 'Europe/Berlin', windows: [night] })
  await insertActiveDeployment(ctx.query, name, 'prod')
  fake.put({
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: `${name}-prod`, namespace: NAMESPACE },
    spec: { minReplicas: api.min_replicas, maxReplicas: api.max_replicas },
  })
}
await deployedServe('fraud')

const clock = { now: new Date('2025-06-02T12:00:00Z') }
let leases = 0
/** A scheduler on one replica reading the shared clock, with a lease of its own test. */
const schedulers = (count: number) => {
  const leaseName = `test-${leases++}`
  return [replicaA, replicaB].slice(0, count).map((replica, i) =>
    createScalingScheduler({ ...ctx, database: replica }, clusterDrivers, { holder: `replica-${i}`, clock: () => clock.now, leaseName }),
  )
}
const hpaPatches = () => fake.requests.filter((r) => r.method === 'PATCH' && r.path.includes('/horizontalpodautoscalers/'))
const applied = async (serve: string) =>
  (
    await ctx.query<{ applied_min: number | null; applied_max: number | null }>(
      'select applied_min, applied_max from scaling_schedules where serve_id = (select id from serves where name = ?)',
      [serve],
    )
  )[0]
const events = (serve: string) =>
  ctx.query('select at, from_min, from_max, to_min, to_max, windows, outcome, error from scaling_events where serve_id = (select id from serves where name = ?) order by id', [serve])

beforeEach(() => fake.clearRequests())

describe('scaling tick on MySQL and the cluster', () => {
  test('a tick inside the window patches the HPA with the window bounds and records the event', async () => {
    const [scheduler] = schedulers(1)
    clock.now = new Date('2025-06-02T12:00:00Z') // 14:00 Berlin: base bounds hold, nothing applied yet
    expect(await scheduler?.tick()).toEqual({ ran: true, result: { targets: 1, changed: 0, unchanged: 1, failed: 0, failures: [] } })
    expect(fake.requests).toEqual([])

    clock.now = new Date('2025-06-02T20:00:00Z') // 22:00 Berlin (CEST): night opens
    expect(await scheduler?.tick()).toEqual({ ran: true, result: { targets: 1, changed: 1, unchanged: 0, failed: 0, failures: [] } })
    expect(hpaPatches()).toEqual([
      {
        method: 'PATCH',
        path: `/apis/autoscaling/v2/namespaces/${NAMESPACE}/horizontalpodautoscalers/fraud-prod`,
        query: { fieldManager: 'darwin-ml-serve' },
        contentType: 'application/merge-patch+json',
        body: {
          apiVersion: 'autoscaling/v2',
          kind: 'HorizontalPodAutoscaler',
          metadata: { name: 'fraud-prod', namespace: NAMESPACE },
          spec: { minReplicas: 1, maxReplicas: 2 },
        },
      },
    ])
    expect(fake.get('HorizontalPodAutoscaler', NAMESPACE, 'fraud-prod')?.spec).toEqual({ minReplicas: 1, maxReplicas: 2 })
    expect(await events('fraud')).toEqual([
      { at: new Date('2025-06-02T20:00:00Z'), from_min: 3, from_max: 10, to_min: 1, to_max: 2, windows: ['night'], outcome: 'applied', error: null },
    ])
    expect(await applied('fraud')).toEqual({ applied_min: 1, applied_max: 2 })
    const listed = await ctx.request('GET', '/api/v1/serve/fraud/scaling-events?env=prod')
    expect(listed.body.data).toMatchObject([{ at: '2025-06-02T20:00:00.000Z', from: { min: 3, max: 10 }, to: { min: 1, max: 2 }, windows: ['night'] }])
  })

  test('a second tick with nothing to change makes no cluster call at all', async () => {
    const [scheduler] = schedulers(1)
    clock.now = new Date('2025-06-02T20:01:00Z')
    expect(await scheduler?.tick()).toEqual({ ran: true, result: { targets: 1, changed: 0, unchanged: 1, failed: 0, failures: [] } })
    expect(fake.requests).toEqual([])
    expect(await events('fraud')).toHaveLength(1)
  })

  test('two schedulers ticking at once over a night apply each change exactly once', async () => {
    const [a, b] = schedulers(2)
    const eventsBefore = (await events('fraud')).length
    let ran = 0
    // From 22:01 Berlin to 08:01 the next day, every 5 minutes: one change, at 06:00 (night closes).
    for (clock.now = new Date('2025-06-02T20:01:00Z'); clock.now <= new Date('2025-06-03T06:01:00Z'); clock.now = new Date(clock.now.getTime() + 5 * MINUTE)) {
      const ticks = await Promise.all([a?.tick(), b?.tick()])
      expect(ticks.filter((tick) => tick?.ran)).toHaveLength(1)
      ran++
    }
    expect(ran).toBe(121)
    expect(hpaPatches().map((patch) => (patch.body as { spec: unknown }).spec)).toEqual([{ minReplicas: 3, maxReplicas: 10 }])
    const after = await events('fraud')
    expect(after.slice(eventsBefore)).toEqual([
      { at: new Date('2025-06-03T04:01:00Z'), from_min: 1, from_max: 2, to_min: 3, to_max: 10, windows: [], outcome: 'applied', error: null },
    ])
  })

  test("a dead leader's lease is taken over once it expires, and the new leader converges", async () => {
    const [a, b] = schedulers(2)
    clock.now = new Date('2025-06-03T12:00:00Z')
    expect((await a?.tick())?.ran).toBe(true)
    // a dies without releasing the lease: until it expires nobody else may act.
    const ttl = ctx.config.scaling.leaseTtlMs
    clock.now = new Date(new Date('2025-06-03T12:00:00Z').getTime() + ttl - 1)
    expect(await b?.tick()).toEqual({ ran: false, reason: 'lease_held_elsewhere' })
    expect(fake.requests).toEqual([])
    clock.now = new Date('2025-06-03T20:30:00Z') // long expired, inside the night window
    expect(await b?.tick()).toMatchObject({ ran: true, result: { changed: 1 } })
    expect(hpaPatches().map((patch) => (patch.body as { spec: unknown }).spec)).toEqual([{ minReplicas: 1, maxReplicas: 2 }])
    expect(await ctx.query('select holder from leases where name like ?', ['test-%'])).toContainEqual({ holder: 'replica-1' })
  })

  test('a cluster failure is recorded as a failed event, leaves the applied bounds, and the next tick retries', async () => {
    const [scheduler] = schedulers(1)
    fake.failNext({ method: 'PATCH', path: /horizontalpodautoscalers/, status: 403, message: 'forbidden by policy' })
    clock.now = new Date('2025-06-04T04:00:00Z') // 06:00 Berlin: night closes
    const tick = await scheduler?.tick()
    expect(tick).toMatchObject({ ran: true, result: { changed: 0, failed: 1, failures: [{ serve: 'fraud', env: 'prod' }] } })
    expect((await events('fraud')).at(-1)).toMatchObject({ to_min: 3, to_max: 10, outcome: 'failed', error: expect.stringContaining('forbidden by policy') })
    expect(await applied('fraud')).toEqual({ applied_min: 1, applied_max: 2 })
    clock.now = new Date('2025-06-04T04:01:00Z')
    expect(await scheduler?.tick()).toMatchObject({ ran: true, result: { changed: 1, failed: 0 } })
    expect(await applied('fraud')).toEqual({ applied_min: 3, applied_max: 10 })
  })

  test('a serve without an active deployment is not a target', async () => {
    await ctx.request('POST', '/api/v1/serve', { name: 'idle', type: 'api' })
    await ctx.request('POST', '/api/v1/serve/idle/infra-config/prod', { api_serve_infra_config: api })
    await ctx.request('PUT', '/api/v1/serve/idle/scaling-schedule/prod', { timezone: 'Europe/Berlin', windows: [night] })
    const [scheduler] = schedulers(1)
    clock.now = new Date('2025-06-04T21:00:00Z')
    const tick = await scheduler?.tick()
    expect(tick).toMatchObject({ ran: true, result: { targets: 1 } })
    expect(hpaPatches().map((patch) => patch.path)).toEqual([`/apis/autoscaling/v2/namespaces/${NAMESPACE}/horizontalpodautoscalers/fraud-prod`])
  })

  test('deleting a schedule whose window bounds are live: the next tick sets the base bounds back, then forgets the schedule', async () => {
    expect(await applied('fraud')).toEqual({ applied_min: 1, applied_max: 2 })
    const deleted = await ctx.request('DELETE', '/api/v1/serve/fraud/scaling-schedule/prod')
    expect(deleted.body.data.restore_pending).toBe(true)
    const [scheduler] = schedulers(1)
    clock.now = new Date('2025-06-04T21:05:00Z') // still night: the window no longer counts
    expect(await scheduler?.tick()).toMatchObject({ ran: true, result: { targets: 1, changed: 1 } })
    expect(fake.get('HorizontalPodAutoscaler', NAMESPACE, 'fraud-prod')?.spec).toEqual({ minReplicas: 3, maxReplicas: 10 })
    expect((await events('fraud')).at(-1)).toMatchObject({ from_min: 1, from_max: 2, to_min: 3, to_max: 10, windows: [], outcome: 'applied' })
    expect(await applied('fraud')).toBeUndefined()
    fake.clearRequests()
    expect(await scheduler?.tick()).toMatchObject({ ran: true, result: { targets: 0 } })
    expect(fake.requests).toEqual([])
  })
})

describe('POST /api/v1/scaling/tick', () => {
  test('runs the same tick through the lease and returns the counts', async () => {
    const response = await ctx.request('POST', '/api/v1/scaling/tick')
    expect(response.status).toBe(200)
    expect(response.body.data).toEqual({ ran: true, result: { targets: 0, changed: 0, unchanged: 0, failed: 0, failures: [] } })
  })

  test('answers ran: false while another replica holds the lease', async () => {
    await ctx.query('delete from leases where name = ?', [SCALING_LEASE])
    expect(await tryAcquire(ctx.database.db, SCALING_LEASE, 'another-replica', 60_000)).toBe(true)
    const response = await ctx.request('POST', '/api/v1/scaling/tick')
    expect(response.status).toBe(200)
    expect(response.body.data).toEqual({ ran: false, reason: 'lease_held_elsewhere' })
  })

  test('refuses anonymous calls (401) and read-only tokens (403)', async () => {
    expect((await ctx.request('POST', '/api/v1/scaling/tick', undefined, { authorization: '' })).status).toBe(401)
    const readOnly = await ctx.createToken(['read'])
    expect((await ctx.request('POST', '/api/v1/scaling/tick', undefined, { authorization: `Bearer ${readOnly}` })).status).toBe(403)
    const deployer = await ctx.createToken(['deploy'])
    expect((await ctx.request('POST', '/api/v1/scaling/tick', undefined, { authorization: `Bearer ${deployer}` })).status).toBe(200)
  })
})
