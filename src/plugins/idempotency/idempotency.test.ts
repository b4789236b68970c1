/**
 * Idempotency-Key over the API, against MySQL and a fake Kubernetes API server (deploys answer 201
 * and echo their environment variables: answers of any size). Store failures are real database
 * errors: a trigger on idempotency_keys refuses the updates of the keys listed in a fault table.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { createTestContext } from '../../../test/support/context'
import { FakeKubernetes } from '../../../test/support/fake-kubernetes'
import { environmentBody } from '../../../test/support/fixtures'
import { createIdempotencyJanitor, requestHashOf, STORE_RETRY_DELAYS_MS, startHeartbeat } from './index'
import { claimKey, DEAD_AFTER_MS } from './store'

const fake = new FakeKubernetes()
afterAll(() => fake.stop())
const settings = { ENV: 'prod', ROLLOUT_POLL_INTERVAL_MS: '50', CLUSTER_REQUEST_ATTEMPTS: '1', CLUSTER_REQUEST_TIMEOUT_MS: '1000' }
const ctx = await createTestContext(settings, {
  clusterDrivers: fake.drivers(settings),
})
const NS = 'ml-serve'
const post = (body: unknown, key: string, headers: Record<string, string> = {}) =>
  ctx.request('POST', '/api/v1/environment', body, { 'idempotency-key': key, ...headers })

describe('Idempotency-Key', () => {
  test('the same key and body returns the first response and does the work once', async () => {
    const first = await post(environmentBody('idem'), 'key-1')
    const second = await post(environmentBody('idem'), 'key-1')
    expect(first.status).toBe(201)
    expect(second.status).toBe(201)
    expect(second.body).toEqual(first.body)
    expect(second.headers.get('idempotent-replayed')).toBe('true')
    expect(await ctx.query("select id from environments where name = 'idem'")).toHaveLength(1)
    expect(await ctx.query("select id from audit_log where resource_name = 'idem'")).toHaveLength(1)
  })

  test('key order in the body does not matter', async () => {
    const { name, environment_configs } = environmentBody('idem')
    const reordered = await post({ environment_configs, name }, 'key-1')
    expect(reordered.status).toBe(201)
    expect(reordered.headers.get('idempotent-replayed')).toBe('true')
  })

  test('the same key with a different body → 422', async () => {
    const response = await post(environmentBody('idem-other'), 'key-1')
    expect(response.status).toBe(422)
    expect(response.body.code).toBe('IDEMPOTENCY_KEY_REUSED')
    expect(await ctx.query("select id from environments where name = 'idem-other'")).toHaveLength(0)
  })

  test('keys belong to a token: another token with the same key really runs', async () => {
    const other = await ctx.createToken(['write'])
    const response = await post(environmentBody('idem'), 'key-1', { authorization: `Bearer ${other}` })
    expect(response.status).toBe(409)
  })

  test('a failed attempt releases its key, so the retry runs again', async () => {
    const failed = await post(environmentBody('idem'), 'key-2')
    expect(failed.status).toBe(409)
    await Bun.sleep(30)
    await ctx.request('DELETE', '/api/v1/environment/idem')
    const retried = await post(environmentBody('idem'), 'key-2')
    expect(retried.status).toBe(201)
    expect(retried.headers.get('idempotent-replayed')).toBeNull()
  })

  test('concurrent requests with one key: one does the work, the others replay it or are told to retry', async () => {
    const responses = await Promise.all(Array.from({ length: 8 }, () => post(environmentBody('idem-race'), 'key-race')))
    const statuses = responses.map((r) => r.status)
    expect(statuses.filter((s) => s === 201).length).toBeGreaterThanOrEqual(1)
    expect(statuses.every((s) => s === 201 || s === 409)).toBe(true)
    expect(responses.filter((r) => r.status === 201 && r.headers.get('idempotent-replayed') === null)).toHaveLength(1)
    expect(await ctx.query("select id from environments where name = 'idem-race'")).toHaveLength(1)
  })

  test('expired keys are forgotten', async () => {
    await post(environmentBody('idem-exp'), 'key-exp')
    await ctx.query("update idempotency_keys set expires_at = '2000-01-01 00:00:00' where idempotency_key = 'key-exp'")
    const again = await post(environmentBody('idem-exp'), 'key-exp')
    expect(again.status).toBe(409) // really ran again: the environment exists
  })

  test('a malformed key → 422 naming the header', async () => {
    const response = await post(environmentBody('idem-bad'), 'x'.repeat(256))
    expect(response.status).toBe(422)
    expect(response.body.errors).toEqual([{ path: '/headers/idempotency-key', message: 'invalid' }])
  })

  test('token creation is never stored (its response holds the secret)', async () => {
    const response = await ctx.request('POST', '/api/v1/tokens', { name: 'idem-token', scopes: ['read'] }, { 'idempotency-key': 'key-token' })
    expect(response.status).toBe(201)
    expect(await ctx.query("select id from idempotency_keys where idempotency_key = 'key-token'")).toHaveLength(0)
  })
})

// --- Answers of any size, store failures, dead claims, the janitor ---

const adminTokenId = (await ctx.query<{ id: number }>("select id from api_tokens where name = 'admin'"))[0]?.id ?? 0

/** The app's answer as a client receives it: status, headers and the body's exact text. */
async function raw(path: string, body: unknown, headers: Record<string, string>) {
  const response = await ctx.app.handle(
    new Request(`http://localhost${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ctx.adminToken}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    }),
  )
  return { status: response.status, headers: response.headers, text: await response.text() }
}

async function setUpServe(name: string) {
  if ((await ctx.request('GET', '/api/v1/environment/prod')).status === 404) {
    expect((await ctx.request('POST', '/api/v1/environment', environmentBody('prod', { namespace: NS }))).status).toBe(201)
  }
  expect((await ctx.request('POST', '/api/v1/serve', { name, type: 'api', description: 'idempotency', space: 'ml-team' })).status).toBe(201)
  const infra = { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 2, node_capacity_type: 'spot' }
  expect((await ctx.request('POST', `/api/v1/serve/${name}/infra-config/prod`, { api_serve_infra_config: infra })).status).toBe(201)
  expect((await ctx.request('POST', '/api/v1/artifact', { serve_name: name, version: 'v1.0.0', image: `registry.example.com/${name}:v1.0.0` })).status).toBe(201)
}

/** Four variables of 25,000 UTF-16 units (multi-byte characters included): about 200 KB of answer. */
const bigVariables = (marker: string) =>
  Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`BIG_${i}`, `${marker}-${i}-${'ü€😀x'.repeat(5_000)}`]))
const deployBody = (marker: string) => ({
  env: 'prod',
  artifact_version: 'v1.0.0',
  api_serve_deployment_config: { deployment_strategy: 'rolling', environment_variables: bigVariables(marker) },
})
const deploy = (serve: string, body: unknown, key: string, headers: Record<string, string> = {}) =>
  raw(`/api/v1/serve/${serve}/deploy`, body, { 'idempotency-key': key, ...headers })
const revisions = (serve: string) =>
  ctx.query<{ revision: number }>('select d.revision from deployments d join serves s on s.id = d.serve_id where s.name = ? order by d.revision', [serve])

/** Ends the rollout, so that the change lock is free and a second run of the deploy would make a second revision. */
async function settle(...serves: string[]) {
  for (const serve of serves) {
    const name = `${serve}-prod`
    const generation = Number(fake.get('Deployment', NS, name)?.metadata.generation ?? 1)
    fake.setStatus('Deployment', NS, name, { observedGeneration: generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 })
  }
  await ctx.deployment.tracker.tick()
}

interface KeyRow {
  id: number
  state: string
  status_code: number | null
  response_body: string | null
  content_type: string | null
  request_id: string | null
  heartbeat_at: Date | null
}
const keyRow = async (key: string) => (await ctx.query<KeyRow>('select * from idempotency_keys where idempotency_key = ?', [key]))[0]

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition')
    await Bun.sleep(50)
  }
}
const codeOf = (answer: { text: string }) => (JSON.parse(answer.text) as { code?: string }).code

// A real database failure on demand: updates of the keys listed in idem_faults fail — `body` fails
// those that store an answer, `all` fails every update — `remaining` times. The fault table is
// MEMORY (not transactional), so its countdown survives the failed statement's rollback.
await ctx.query('create table idem_faults (idempotency_key varchar(255) primary key, mode varchar(10) not null, remaining int not null) engine = memory')
await ctx.query(`
  create trigger idem_faults_on_update before update on idempotency_keys for each row
  begin
    declare fault varchar(10);
    set fault = (select mode from idem_faults where idempotency_key = new.idempotency_key and remaining > 0);
    if fault = 'all' or (fault = 'body' and new.response_body is not null) then
      update idem_faults set remaining = remaining - 1 where idempotency_key = new.idempotency_key;
      signal sqlstate '45000' set message_text = 'injected idempotency store failure';
    end if;
  end`)
const injectFault = (key: string, mode: 'body' | 'all', times: number) => ctx.query('insert into idem_faults values (?, ?, ?)', [key, mode, times])

describe('Idempotency-Key: answers of any size', () => {
  test('the answer column holds any answer (LONGTEXT)', async () => {
    const [column] = await ctx.query<{ type: string }>(
      "select data_type as type from information_schema.columns where table_schema = database() and table_name = 'idempotency_keys' and column_name = 'response_body'",
    )
    expect(column?.type).toBe('longtext')
  })

  test('a 201 deploy answer over 64 KiB is stored whole and replayed byte for byte, without a second revision', async () => {
    await setUpServe('idem-big')
    const body = deployBody('big-marker')
    const first = await deploy('idem-big', body, 'big-1')
    expect(first.status).toBe(201)
    expect(first.headers.get('idempotent-replayed')).toBeNull()
    expect(Buffer.byteLength(first.text)).toBeGreaterThan(3 * 65_536)
    expect(JSON.parse(first.text).data.api_serve_deployment_config.environment_variables).toEqual(body.api_serve_deployment_config.environment_variables)
    expect(await keyRow('big-1')).toMatchObject({ state: 'done', status_code: 201, response_body: first.text })
    await settle('idem-big')

    const again = await deploy('idem-big', body, 'big-1')
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(again.text).toBe(first.text)
    expect(again.headers.get('content-type')).toBe(first.headers.get('content-type'))
    expect(await revisions('idem-big')).toHaveLength(1)
  })
})

describe('Idempotency-Key: a failure to store the answer never repeats the change', () => {
  test('storing fails once: the client gets the real answer, the store is retried, the retry replays it', async () => {
    await setUpServe('idem-once')
    await injectFault('once-1', 'body', 1)
    const body = deployBody('once-marker')
    const first = await deploy('idem-once', body, 'once-1')
    expect(first.status).toBe(201)
    expect(first.headers.get('idempotent-replayed')).toBeNull()
    expect(JSON.parse(first.text).data.revision).toBe(1)

    // Meanwhile the claim is held (in progress) or already stored: never a second run.
    const meanwhile = await deploy('idem-once', body, 'once-1')
    if (meanwhile.status === 409) expect(codeOf(meanwhile)).toBe('IDEMPOTENCY_IN_PROGRESS')
    else expect(meanwhile).toMatchObject({ status: 201, text: first.text })

    await until(async () => (await keyRow('once-1'))?.state === 'done')
    await settle('idem-once')
    const again = await deploy('idem-once', body, 'once-1')
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(again.text).toBe(first.text)
    expect(await revisions('idem-once')).toHaveLength(1)
    const warned = ctx.logs.find((line) => line.includes('stored an idempotent answer after retrying'))
    expect(warned).toBeDefined()
    expect(JSON.parse(warned as string)).toMatchObject({ level: 'warn', attempts: 2, status: 201 })
  })

  test('storing keeps failing: the real answer, then retries are refused (answer_lost), never run', async () => {
    await setUpServe('idem-lost')
    await setUpServe('idem-dead')
    // idem-lost: the answer cannot be stored, but the key can still be marked. idem-dead: nothing can be written.
    await injectFault('lost-1', 'body', 1_000)
    await injectFault('dead-1', 'all', 1_000)
    const lostBody = deployBody('lost-marker')
    const deadBody = deployBody('dead-marker')
    const [lost, dead] = await Promise.all([
      deploy('idem-lost', lostBody, 'lost-1', { 'x-request-id': 'req-lost-1' }),
      deploy('idem-dead', deadBody, 'dead-1', { 'x-request-id': 'req-dead-1' }),
    ])
    expect([lost.status, dead.status]).toEqual([201, 201])
    expect(JSON.parse(lost.text).data.api_serve_deployment_config.environment_variables).toEqual(lostBody.api_serve_deployment_config.environment_variables)
    await settle('idem-lost', 'idem-dead')

    // Every attempt (about 4 s of them) failed.
    const retryWindow = STORE_RETRY_DELAYS_MS.reduce((sum, delay) => sum + delay, 0) + 10_000
    await until(async () => (await keyRow('lost-1'))?.state === 'answer_lost', retryWindow)
    await until(() => ctx.logs.some((line) => line.includes('nor mark it lost') && line.includes('req-dead-1')), retryWindow)
    expect(await keyRow('lost-1')).toMatchObject({ status_code: 201, response_body: null })
    expect(await keyRow('dead-1')).toMatchObject({ state: 'in_progress', response_body: null })

    const lostRetry = await deploy('idem-lost', lostBody, 'lost-1')
    expect(lostRetry.status).toBe(409)
    expect(codeOf(lostRetry)).toBe('IDEMPOTENCY_ANSWER_LOST')
    // Its claim is not dead yet (renewed until a moment ago): wait.
    const deadRetry = await deploy('idem-dead', deadBody, 'dead-1')
    expect(deadRetry.status).toBe(409)
    expect(codeOf(deadRetry)).toBe('IDEMPOTENCY_IN_PROGRESS')

    // The database is back; two minutes without a heartbeat: the claim is dead. Its request's audit
    // entry (written with the revision) shows the deploy was made: refused, not run again.
    await ctx.query("delete from idem_faults where idempotency_key = 'dead-1'")
    await ctx.query('update idempotency_keys set heartbeat_at = ? where idempotency_key = ?', [new Date(Date.now() - DEAD_AFTER_MS - 1_000), 'dead-1'])
    expect(await ctx.query("select id from audit_log where request_id = 'req-dead-1' and outcome = 'success'")).toHaveLength(1)
    const settled = await deploy('idem-dead', deadBody, 'dead-1')
    expect(settled.status).toBe(409)
    expect(codeOf(settled)).toBe('IDEMPOTENCY_ANSWER_LOST')
    expect((await keyRow('dead-1'))?.state).toBe('answer_lost')

    expect(await revisions('idem-lost')).toHaveLength(1)
    expect(await revisions('idem-dead')).toHaveLength(1)
    const warnings = ctx.logs.filter((line) => line.includes('could not store an idempotent answer')).map((line) => JSON.parse(line))
    expect(warnings.map((line) => [line.level, line.request_id])).toEqual(expect.arrayContaining([['warn', 'req-lost-1'], ['warn', 'req-dead-1']]))
    expect(warnings.every((line) => line.body_bytes > 3 * 65_536 && line.error_message?.includes('injected'))).toBe(true)
    // No log line carries an answer (they may hold what a deploy was given).
    for (const marker of ['big-marker', 'once-marker', 'lost-marker', 'dead-marker']) {
      expect(ctx.logs.filter((line) => line.includes(marker))).toEqual([])
    }
  })
})

describe('Idempotency-Key: claims of requests that died', () => {
  const claim = (key: string, body: unknown, requestId?: string) =>
    claimKey(ctx.database.db, { key, actorTokenId: adminTokenId, method: 'POST', path: '/api/v1/environment', requestHash: requestHashOf('', body), ttlMs: 3_600_000, requestId })
  const age = (key: string, column: 'created_at' | 'heartbeat_at', ms: number) =>
    ctx.query(`update idempotency_keys set ${column} = ? where idempotency_key = ?`, [new Date(Date.now() - ms), key])
  const environments = (name: string) => ctx.query('select id from environments where name = ?', [name])

  test('a claim still renewed is in progress however old it is; once dead with nothing committed, the retry runs it once', async () => {
    const body = environmentBody('idem-crashed')
    expect((await claim('crashed-1', body, 'req-crashed-1')).kind).toBe('claimed')
    // Half an hour old but renewed: a slow request, alive (the former 5-minute rule ran it a second time).
    await age('crashed-1', 'created_at', 30 * 60_000)
    const waiting = await post(body, 'crashed-1')
    expect(waiting.status).toBe(409)
    expect(waiting.body.code).toBe('IDEMPOTENCY_IN_PROGRESS')
    expect(await environments('idem-crashed')).toHaveLength(0)

    // Its process died before committing: no heartbeat for two minutes, no audit entry of its request.
    await age('crashed-1', 'heartbeat_at', DEAD_AFTER_MS + 1_000)
    const retried = await post(body, 'crashed-1')
    expect(retried.status).toBe(201)
    expect(retried.headers.get('idempotent-replayed')).toBeNull()
    const again = await post(body, 'crashed-1')
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await environments('idem-crashed')).toHaveLength(1)
  })

  test('a dead claim without a request id (whether it committed cannot be told) is never run again', async () => {
    const body = environmentBody('idem-legacy')
    expect((await claim('legacy-1', body)).kind).toBe('claimed')
    await age('legacy-1', 'heartbeat_at', DEAD_AFTER_MS + 1_000)
    const retried = await post(body, 'legacy-1')
    expect(retried.status).toBe(409)
    expect(retried.body.code).toBe('IDEMPOTENCY_ANSWER_LOST')
    expect(await environments('idem-legacy')).toHaveLength(0)
  })

  test('a running request renews its claim until its heartbeat stops', async () => {
    const created = await claim('beat-1', { beat: 1 }, 'req-beat-1')
    if (created.kind !== 'claimed') throw new Error(`expected a claim, got ${created.kind}`)
    const heartbeatAge = async () => Date.now() - ((await keyRow('beat-1'))?.heartbeat_at?.getTime() ?? 0)
    await age('beat-1', 'heartbeat_at', 60_000)
    const heartbeat = startHeartbeat(ctx.database.db, created.id, ctx.log, 20)
    await until(async () => (await heartbeatAge()) < 5_000)
    heartbeat.stop()
    await age('beat-1', 'heartbeat_at', 60_000)
    await Bun.sleep(100)
    expect(await heartbeatAge()).toBeGreaterThan(50_000)
  })
})

describe('Idempotency-Key: the janitor', () => {
  const expiredCount = async () => Number((await ctx.query<{ n: number }>('select count(*) as n from idempotency_keys where expires_at < ?', [new Date()]))[0]?.n)
  const insertKeys = (prefix: string, count: number, expiresAt: Date) =>
    ctx.query('insert into idempotency_keys (idempotency_key, actor_token_id, method, path, request_hash, state, status_code, response_body, created_at, expires_at) values ?', [
      Array.from({ length: count }, (_, i) => [`${prefix}-${i}`, adminTokenId, 'POST', '/api/v1/environment', 'a'.repeat(64), 'done', 201, '{}', new Date(expiresAt.getTime() - 3_600_000), expiresAt]),
    ])

  test('deletes expired keys in bounded batches and keeps the live ones', async () => {
    const janitor = createIdempotencyJanitor({ db: ctx.database.db, log: ctx.log, batchSize: 10, maxBatchesPerRun: 2 })
    while ((await janitor.runOnce()).deleted > 0) {} // what earlier tests left
    const live = Number((await ctx.query<{ n: number }>('select count(*) as n from idempotency_keys'))[0]?.n)
    await insertKeys('jan-expired', 25, new Date(Date.now() - 60_000))
    await insertKeys('jan-live', 3, new Date(Date.now() + 3_600_000))

    // Two DELETE … LIMIT 10 per run: the rest waits for the next run.
    expect(await janitor.runOnce()).toEqual({ deleted: 20, batches: 2 })
    expect(await janitor.runOnce()).toEqual({ deleted: 5, batches: 1 })
    expect(await expiredCount()).toBe(0)
    expect(await ctx.query("select id from idempotency_keys where idempotency_key like 'jan-live-%'")).toHaveLength(3)
    expect(Number((await ctx.query<{ n: number }>('select count(*) as n from idempotency_keys'))[0]?.n)).toBe(live + 3)
  })

  test('runs on its schedule once started, and stops', async () => {
    await insertKeys('jan-scheduled', 7, new Date(Date.now() - 60_000))
    const janitor = createIdempotencyJanitor({ db: ctx.database.db, log: ctx.log, intervalMs: 20, batchSize: 3, maxBatchesPerRun: 1 })
    janitor.start()
    await until(async () => (await expiredCount()) === 0)
    await janitor.stop()
    await insertKeys('jan-after-stop', 2, new Date(Date.now() - 60_000))
    await Bun.sleep(100)
    expect(await expiredCount()).toBe(2)
    expect(ctx.logs.some((line) => line.includes('purged expired idempotency keys'))).toBe(true)
  })
})
