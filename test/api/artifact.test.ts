import { afterAll, describe, expect, test } from 'bun:test'
import { createArtifactPoller } from '../../src/modules/artifact/poller'
import { artifactDepsFor } from '../../src/modules/artifact/service'
import { createTestContext, type TestResponse } from '../support/context'
import { startFakeArtifactBuilder } from '../support/fake-artifact-builder'

const GITHUB_TOKEN = `ghp_${'s3cr3t'.repeat(6)}`
const builder = startFakeArtifactBuilder()
const ctx = await createTestContext({
  ARTIFACT_BUILDER_URL: builder.url,
  ARTIFACT_BUILDER_PUBLIC_URL: 'https://builder.example.com',
  ARTIFACT_BUILDER_TIMEOUT_MS: '300',
  GITHUB_TOKEN,
  CONTAINER_REGISTRY: 'registry.example.com',
  IMAGE_REPOSITORY: 'ml/serves',
})
await ctx.request('POST', '/api/v1/serve', { name: 'fraud', type: 'api' })
await ctx.request('POST', '/api/v1/serve', { name: 'recsys', type: 'api' })

/** Every response of this file, to check at the end that the token never appeared in one. */
const responses: TestResponse[] = []
const call = async (method: string, path: string, body?: unknown) => {
  const response = await ctx.request(method, path, body)
  responses.push(response)
  return response
}
const build = (version: string, overrides: Record<string, unknown> = {}) =>
  call('POST', '/api/v1/artifact', { serve_name: 'fraud', version, github_repo_url: 'https://github.com/myorg/fraud', branch: 'main', ...overrides })
const get = (serve: string, version: string) => call('GET', `/api/v1/serve/${serve}/artifact/${version}`)
const starts = () => builder.requests.filter((r) => r.path === '/build_with_dockerfile')
const statusOf = async (serve: string, version: string) =>
  (await ctx.query<{ status: string }>('select a.status from artifacts a join serves s on s.id = a.serve_id where s.name = ? and a.version = ?', [serve, version]))[0]?.status
/** A poller that finds every pending build due at once, driven by explicit ticks. */
const newPoller = () => createArtifactPoller(artifactDepsFor(ctx), { intervalMs: 0 })
const lastTask = () => builder.tasks().at(-1) ?? ''

afterAll(() => {
  // The token went to the builder, and nowhere else.
  expect(starts().every((r) => (r.body as { github_token?: string }).github_token === GITHUB_TOKEN)).toBe(true)
})

describe('artifact API — happy path', () => {
  test('a prebuilt image is registered as succeeded at once, without the builder', async () => {
    const image = 'registry.example.com/ml/recsys:v1.0.0'
    const response = await call('POST', '/api/v1/artifact', { serve_name: 'recsys', version: 'v1.0.0', image })
    expect(response.status).toBe(201)
    expect(response.body.message).toBe('Artifact registered')
    expect(response.body.data).toMatchObject({ serve_name: 'recsys', version: 'v1.0.0', source: 'prebuilt', status: 'succeeded', image, github_repo_url: null })
    expect(starts()).toHaveLength(0)
  })

  test('a build is started with the original contract and answers 201 queued, with a public logs link', async () => {
    const response = await build('v1.0.0', { commit: 'abc1234', dockerfile_path: 'docker/Dockerfile' })
    expect(response.status).toBe(201)
    expect(response.body.message).toBe('Artifact build started')
    expect(response.body.data).toMatchObject({
      serve_name: 'fraud',
      version: 'v1.0.0',
      source: 'build',
      status: 'queued',
      image: null,
      github_repo_url: 'https://github.com/myorg/fraud',
      branch: 'main',
      commit: 'abc1234',
      dockerfile_path: 'docker/Dockerfile',
      logs_url: `https://builder.example.com/logs/${lastTask()}`,
    })
    expect(starts().at(-1)?.body).toEqual({
      app_name: 'fraud',
      image_tag: 'fraud_v1.0.0',
      git_repo: 'https://github.com/myorg/fraud',
      branch: 'main',
      commit: 'abc1234',
      dockerfile_path: 'docker/Dockerfile',
      github_token: GITHUB_TOKEN,
    })
    const [row] = await ctx.query<{ builder_task_id: string; status: string }>("select builder_task_id, status from artifacts where version = 'v1.0.0' and source = 'build'")
    expect(row).toEqual({ builder_task_id: lastTask(), status: 'queued' })
  })

  test('the poller moves it queued → building → succeeded, with the built image reference', async () => {
    const poller = newPoller()
    const task = lastTask()
    expect(await poller.tick()).toBe(1)
    expect(await statusOf('fraud', 'v1.0.0')).toBe('queued') // the builder still says waiting
    builder.setState(task, 'running')
    await poller.tick()
    expect(await statusOf('fraud', 'v1.0.0')).toBe('building')
    builder.setState(task, 'completed')
    await poller.tick()
    const response = await get('fraud', 'v1.0.0')
    expect(response.body.data).toMatchObject({ status: 'succeeded', image: 'registry.example.com/ml/serves:fraud_v1.0.0' })
    expect(await poller.tick()).toBe(0) // final: nothing left to follow
    expect(ctx.logs.some((line) => line.includes('"to":"succeeded"'))).toBe(true)
  })

  test('a later artifact without github_repo_url reuses the serve’s repo; branch defaults to main', async () => {
    const response = await call('POST', '/api/v1/artifact', { serve_name: 'fraud', version: 'v1.1.0' })
    expect(response.status).toBe(201)
    expect(response.body.data).toMatchObject({ github_repo_url: 'https://github.com/myorg/fraud', branch: 'main' })
    expect(starts().at(-1)?.body).toMatchObject({ git_repo: 'https://github.com/myorg/fraud', branch: 'main', image_tag: 'fraud_v1.1.0' })
  })

  test('a failed build records the builder’s reason (scrubbed of the token); GET refreshes without the poller', async () => {
    builder.setState(lastTask(), 'failed', `pip install failed: could not clone https://${GITHUB_TOKEN}@github.com/myorg/fraud`)
    const response = await get('fraud', 'v1.1.0')
    expect(response.status).toBe(200)
    expect(response.body.data.status).toBe('failed')
    expect(response.body.data.failure_reason).toBe('pip install failed: could not clone https://***@github.com/myorg/fraud')
    expect(response.body.data.logs_url).toMatch(/^https:\/\/builder\.example\.com\/logs\//)
  })

  test('list: newest first, paginated, filtered by serve and status; the original’s alias and job routes', async () => {
    const all = await call('GET', '/api/v1/artifact?limit=2')
    expect(all.status).toBe(200)
    expect(all.body.data.map((a: { version: string; serve_name: string }) => `${a.serve_name}:${a.version}`)).toEqual(['fraud:v1.1.0', 'fraud:v1.0.0'])
    expect(all.body.pagination).toEqual({ page: 1, limit: 2, total: 3 })
    const fraud = await call('GET', '/api/v1/artifact?serve_name=fraud&status=succeeded')
    expect(fraud.body.data.map((a: { version: string }) => a.version)).toEqual(['v1.0.0'])
    const alias = await call('GET', '/api/v1/artifact/recsys')
    expect(alias.body.data.map((a: { version: string }) => a.version)).toEqual(['v1.0.0'])
    const jobs = await call('GET', '/api/v1/artifact_builder_job?serve_name=fraud&status=failed')
    expect(jobs.body.data).toHaveLength(1)
    const job = await call('GET', `/api/v1/artifact_builder_job/${jobs.body.data[0].job_id}/status`)
    expect(job.status).toBe(200)
    expect(job.body.data).toMatchObject({ serve_name: 'fraud', version: 'v1.1.0', status: 'failed' })
    expect(job.body.data.logs_url).toStartWith('https://builder.example.com/logs/')
  })
})

describe('artifact API — the build poller', () => {
  test('nothing is lost over a restart: a new poller resumes the builds the stopped one left pending', async () => {
    expect((await build('v2.0.0')).status).toBe(201)
    const task = lastTask()
    const first = newPoller()
    first.start()
    await first.stop()
    builder.setState(task, 'completed')
    expect(await statusOf('fraud', 'v2.0.0')).toBe('queued') // the builder finished while no poller ran
    const second = newPoller()
    second.start() // ticks at once
    await second.stop()
    expect(await statusOf('fraud', 'v2.0.0')).toBe('succeeded')
  })

  test('builds locked by another replica are skipped (FOR UPDATE SKIP LOCKED), and claimed ones are left alone for an interval', async () => {
    expect((await build('v3.0.0')).status).toBe(201)
    await ctx.query('start transaction')
    await ctx.query("select id from artifacts where version = 'v3.0.0' for update")
    expect(await newPoller().tick()).toBe(0)
    await ctx.query('rollback')
    const patient = createArtifactPoller(artifactDepsFor(ctx), { intervalMs: 60_000 })
    expect(await patient.tick()).toBe(0) // checked at creation, less than an interval ago
    expect(await newPoller().tick()).toBe(1)
  })

  test('builder 500s while polling: the build stays pending and is picked up again next round', async () => {
    builder.statusMode = 'error500'
    await newPoller().tick()
    expect(await statusOf('fraud', 'v3.0.0')).toBe('queued')
    expect(ctx.logs.some((line) => line.includes('could not check an artifact build'))).toBe(true)
    // GET answers with the stored state rather than failing.
    expect((await get('fraud', 'v3.0.0')).body.data.status).toBe('queued')
    builder.statusMode = 'ok'
    builder.setState(lastTask(), 'running')
    await newPoller().tick()
    expect(await statusOf('fraud', 'v3.0.0')).toBe('building')
  })

  test('a task the builder no longer knows is marked failed', async () => {
    builder.forget(lastTask())
    await newPoller().tick()
    const response = await get('fraud', 'v3.0.0')
    expect(response.body.data.status).toBe('failed')
    expect(response.body.data.failure_reason).toMatch(/does not know build task/)
  })
})

describe('artifact API — errors', () => {
  test('duplicate version → 409, and the builder is not asked again', async () => {
    const before = starts().length
    const response = await build('v1.0.0')
    expect(response.status).toBe(409)
    expect(response.body).toMatchObject({ code: 'ALREADY_EXISTS', message: 'Artifact v1.0.0 of serve fraud already exists' })
    expect(starts()).toHaveLength(before)
  })

  test('builder answering 500 → 502 after bounded retries, and no artifact row', async () => {
    builder.startMode = 'error500'
    const before = starts().length
    const response = await build('v9.0.0')
    builder.startMode = 'ok'
    expect(response.status).toBe(502)
    expect(response.body).toMatchObject({ status: 'ERROR', code: 'DEPENDENCY_FAILED' })
    expect(starts().length - before).toBe(3)
    expect(await ctx.query("select id from artifacts where version = 'v9.0.0'")).toHaveLength(0)
    expect(await ctx.query("select id from audit_log where resource_name = 'fraud:v9.0.0' and outcome = 'success'")).toHaveLength(0)
  })

  test('builder hanging → 502 after the timeout, a timed-out start is not retried, and no row', async () => {
    builder.startMode = 'hang'
    const before = starts().length
    const response = await build('v9.0.1')
    builder.startMode = 'ok'
    expect(response.status).toBe(502)
    expect(response.body.message).toMatch(/Artifact Builder: no answer within 300 ms/)
    expect(starts().length - before).toBe(1)
    expect(await ctx.query("select id from artifacts where version = 'v9.0.1'")).toHaveLength(0)
  })

  test('builder refusing the build (unknown branch) → 422 BUILD_REJECTED, no row', async () => {
    builder.startMode = 'reject400'
    const response = await build('v9.0.2', { branch: 'does-not-exist' })
    builder.startMode = 'ok'
    expect(response.status).toBe(422)
    expect(response.body.code).toBe('BUILD_REJECTED')
    expect(response.body.message).toContain('branch does-not-exist not found')
    expect(await ctx.query("select id from artifacts where version = 'v9.0.2'")).toHaveLength(0)
  })

  test('builder unreachable → 502 and no row', async () => {
    const offline = await createTestContext({ ARTIFACT_BUILDER_URL: 'http://127.0.0.1:1', GITHUB_TOKEN })
    await offline.request('POST', '/api/v1/serve', { name: 'fraud', type: 'api' })
    const response = await offline.request('POST', '/api/v1/artifact', { serve_name: 'fraud', version: 'v1', github_repo_url: 'https://github.com/myorg/fraud' })
    expect(response.status).toBe(502)
    expect(response.body.message).toBe('Artifact Builder: unreachable')
    expect(await offline.query('select id from artifacts')).toHaveLength(0)
    expect(JSON.stringify(response.body) + offline.logs.join('\n')).not.toContain(GITHUB_TOKEN)
  })

  test.each([
    ['both an image and a git source', { image: 'registry.example.com/x:1', github_repo_url: 'https://github.com/myorg/fraud' }, '/github_repo_url'],
    ['credentials in the repo URL', { github_repo_url: `https://${GITHUB_TOKEN}@github.com/myorg/fraud` }, '/github_repo_url'],
    ['a non-https repo URL', { github_repo_url: 'git@github.com:myorg/fraud.git' }, '/github_repo_url'],
    ['an image without tag or digest', { github_repo_url: undefined, branch: undefined, image: 'registry.example.com/x' }, '/image'],
    ['a bad commit', { commit: 'not-a-sha' }, '/commit'],
    ['an absolute Dockerfile path', { dockerfile_path: '/etc/Dockerfile' }, '/dockerfile_path'],
    ['a Dockerfile path going up', { dockerfile_path: 'a/../../Dockerfile' }, '/dockerfile_path'],
    ['a bad version', { version: 'v 1' }, '/version'],
    ['a branch starting with "-"', { branch: '-rf' }, '/branch'],
    ['an unknown field', { colour: 'blue' }, '/colour'],
  ])('%s → 422 naming the field, nothing written', async (_label, change, field) => {
    const before = starts().length
    const response = await call('POST', '/api/v1/artifact', {
      serve_name: 'fraud',
      version: 'v8.0.0',
      github_repo_url: 'https://github.com/myorg/fraud',
      branch: 'main',
      ...change,
    })
    expect(response.status).toBe(422)
    expect(response.body.errors.map((e: { path: string }) => e.path)).toContain(field)
    expect(starts()).toHaveLength(before)
    expect(await ctx.query("select id from artifacts where version = 'v8.0.0'")).toHaveLength(0)
  })

  test('the first artifact of a serve needs a git URL (or an image) → 422', async () => {
    await ctx.request('POST', '/api/v1/serve', { name: 'fresh', type: 'api' })
    const response = await call('POST', '/api/v1/artifact', { serve_name: 'fresh', version: 'v1' })
    expect(response.status).toBe(422)
    expect(response.body.errors).toEqual([{ path: '/github_repo_url', message: 'the first artifact of serve fresh needs github_repo_url (or a prebuilt image)' }])
  })

  test('unknown serve, version or job → 404; a bad job id → 422', async () => {
    expect((await call('POST', '/api/v1/artifact', { serve_name: 'nope', version: 'v1', image: 'x/y:1' })).status).toBe(404)
    expect((await call('GET', '/api/v1/artifact?serve_name=nope')).status).toBe(404)
    expect((await call('GET', '/api/v1/artifact/nope')).status).toBe(404)
    const version = await get('fraud', 'v404')
    expect(version.status).toBe(404)
    expect(version.body.message).toBe('Artifact v404 of serve fraud not found')
    expect((await call('GET', '/api/v1/artifact_builder_job/999999/status')).status).toBe(404)
    expect((await call('GET', '/api/v1/artifact_builder_job/abc/status')).status).toBe(422)
    expect((await call('GET', '/api/v1/artifact?status=done')).status).toBe(422)
  })
})

describe('artifact API — GITHUB_TOKEN never leaks', () => {
  test('not in any response, log line, or database row', async () => {
    expect(responses.length).toBeGreaterThan(20)
    for (const response of responses) expect(JSON.stringify(response.body)).not.toContain(GITHUB_TOKEN)
    expect(ctx.logs.join('\n')).not.toContain(GITHUB_TOKEN)
    for (const table of ['artifacts', 'audit_log', 'idempotency_keys', 'serves']) {
      const rows = await ctx.query(`select * from \`${table}\``)
      expect(JSON.stringify(rows)).not.toContain(GITHUB_TOKEN)
    }
  })
})
