import { describe, expect, test } from 'bun:test'
import { createTestContext } from '../support/context'
import { environmentBody } from '../support/fixtures'
import { insertActiveDeployment } from '../support/scaling'

const ctx = await createTestContext()
for (const env of ['prod', 'staging', 'dev']) await ctx.request('POST', '/api/v1/environment', environmentBody(env))
await ctx.request('POST', '/api/v1/serve', { name: 'fraud', type: 'api' })
await ctx.request('POST', '/api/v1/serve', { name: 'nightly', type: 'workflow' })
const api = { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 3, max_replicas: 10, node_capacity_type: 'spot' }
for (const env of ['prod', 'staging']) await ctx.request('POST', `/api/v1/serve/fraud/infra-config/${env}`, { api_serve_infra_config: api })
await ctx.request('POST', '/api/v1/serve/nightly/infra-config/prod', {
  workflow_serve_config: {
    schedule: '0 2 * * *',
    head_node_config: { cores: 2, memory: 4, node_capacity_type: 'ondemand' },
    worker_node_config: [{ cores_per_pods: 4, memory_per_pods: 16, min_pods: 1, max_pods: 4, node_capacity_type: 'spot' }],
  },
})

const path = (serve: string, env: string) => `/api/v1/serve/${serve}/scaling-schedule/${env}`
const night = { name: 'night', start: '0 22 * * *', end: '0 6 * * *', min_replicas: 1, max_replicas: 2 }
const batch = { name: 'batch', start: '30 23 * * *', duration_minutes: 90, min_replicas: 4, max_replicas: 8 }
const schedule = { timezone: 'Europe/Berlin', windows: [night, batch] }
const errorPaths = (response: { body: { errors?: { path: string }[] } }) => (response.body.errors ?? []).map((e) => e.path)

describe('PUT, GET, DELETE a scaling schedule', () => {
  test('PUT creates it: 200 with the base, the bounds in effect now and no applied bounds yet; GET returns the same', async () => {
    const response = await ctx.request('PUT', path('fraud', 'prod'), schedule)
    expect(response.status).toBe(200)
    expect(response.body.message).toContain('next tick')
    const data = response.body.data
    expect(data).toMatchObject({ serve_name: 'fraud', env: 'prod', timezone: 'Europe/Berlin', windows: [night, batch], base: { min: 3, max: 10 }, applied: null })
    expect(['night', 'batch']).toEqual(expect.arrayContaining(data.effective.windows))
    const got = await ctx.request('GET', path('fraud', 'prod'))
    expect(got.status).toBe(200)
    expect(got.body.data).toMatchObject({ timezone: 'Europe/Berlin', windows: [night, batch], base: { min: 3, max: 10 } })
    const rows = await ctx.query<{ timezone: string; windows: unknown }>('select timezone, windows from scaling_schedules')
    expect(rows).toEqual([{ timezone: 'Europe/Berlin', windows: [night, batch] }])
  })

  test('PUT again replaces the windows and keeps the applied bounds (the cluster did not change)', async () => {
    await ctx.query("update scaling_schedules set applied_min = 3, applied_max = 10 where serve_id = (select id from serves where name = 'fraud')")
    const response = await ctx.request('PUT', path('fraud', 'prod'), { timezone: 'UTC', windows: [batch] })
    expect(response.status).toBe(200)
    expect(response.body.data).toMatchObject({ timezone: 'UTC', windows: [batch], applied: { min: 3, max: 10 } })
    expect(await ctx.query('select count(*) as n from scaling_schedules')).toEqual([{ n: 1 }])
  })

  test('PUT and DELETE are audited with the schedule', async () => {
    await ctx.request('PUT', path('fraud', 'staging'), schedule)
    await ctx.request('DELETE', path('fraud', 'staging'))
    const entries = await ctx.query<{ action: string; resource_type: string; resource_name: string; summary: Record<string, unknown>; outcome: string }>(
      "select action, resource_type, resource_name, summary, outcome from audit_log where action like '% /api/v1/serve/:serve_name/scaling-schedule/:env' and json_extract(summary, '$.env') = 'staging' order by id",
    )
    expect(entries).toEqual([
      {
        action: 'PUT /api/v1/serve/:serve_name/scaling-schedule/:env',
        resource_type: 'serve',
        resource_name: 'fraud',
        summary: { env: 'staging', scaling_schedule: schedule },
        outcome: 'success',
      },
      {
        action: 'DELETE /api/v1/serve/:serve_name/scaling-schedule/:env',
        resource_type: 'serve',
        resource_name: 'fraud',
        summary: { env: 'staging', scaling_schedule: null, restore_pending: false },
        outcome: 'success',
      },
    ])
  })

  test('DELETE of a schedule that never changed the cluster removes it: GET is 404 afterwards', async () => {
    await ctx.request('PUT', path('fraud', 'staging'), schedule)
    const response = await ctx.request('DELETE', path('fraud', 'staging'))
    expect(response.status).toBe(200)
    expect(response.body.data).toEqual({ serve_name: 'fraud', env: 'staging', restore_pending: false })
    expect((await ctx.request('GET', path('fraud', 'staging'))).status).toBe(404)
    expect(await ctx.query("select id from scaling_schedules where environment_id = (select id from environments where name = 'staging')")).toEqual([])
  })

  test('DELETE while window bounds are live on a deployed serve: the row stays as a tombstone for the next tick, invisible to the API', async () => {
    await ctx.request('PUT', path('fraud', 'staging'), schedule)
    await insertActiveDeployment(ctx.query, 'fraud', 'staging')
    await ctx.query("update scaling_schedules set applied_min = 1, applied_max = 2 where environment_id = (select id from environments where name = 'staging')")
    const response = await ctx.request('DELETE', path('fraud', 'staging'))
    expect(response.body.data).toEqual({ serve_name: 'fraud', env: 'staging', restore_pending: true })
    expect(await ctx.query("select windows from scaling_schedules where environment_id = (select id from environments where name = 'staging')")).toEqual([{ windows: [] }])
    expect((await ctx.request('GET', path('fraud', 'staging'))).status).toBe(404)
    expect((await ctx.request('DELETE', path('fraud', 'staging'))).status).toBe(404)
    // A new PUT brings the windows back on the same row.
    expect((await ctx.request('PUT', path('fraud', 'staging'), schedule)).body.data.applied).toEqual({ min: 1, max: 2 })
  })

  test('404 for an unknown serve, an unknown environment, and no schedule', async () => {
    for (const [method, target, body] of [
      ['PUT', path('nope', 'prod'), schedule],
      ['PUT', path('fraud', 'nope'), schedule],
      ['GET', path('nope', 'prod'), undefined],
      ['GET', path('fraud', 'nope'), undefined],
      ['GET', path('fraud', 'dev'), undefined],
      ['DELETE', path('fraud', 'nope'), undefined],
      ['DELETE', path('fraud', 'dev'), undefined],
      ['GET', `${path('fraud', 'dev')}/preview`, undefined],
    ] as const) {
      const response = await ctx.request(method, target, body)
      expect({ method, target, status: response.status, code: response.body.code }).toEqual({ method, target, status: 404, code: 'NOT_FOUND' })
    }
  })

  test('409 without an infra config in the environment, and for a workflow serve', async () => {
    const noInfra = await ctx.request('PUT', path('fraud', 'dev'), schedule)
    expect(noInfra.status).toBe(409)
    expect(noInfra.body.code).toBe('NO_INFRA_CONFIG')
    const workflow = await ctx.request('PUT', path('nightly', 'prod'), schedule)
    expect(workflow.status).toBe(409)
    expect(workflow.body.code).toBe('NOT_SCALABLE')
    expect(await ctx.query("select id from scaling_schedules where environment_id = (select id from environments where name = 'dev')")).toEqual([])
  })
})

describe('PUT validation: 422 with the path of each problem', () => {
  const windowWith = (overrides: Record<string, unknown>) => ({ timezone: 'UTC', windows: [{ ...night, ...overrides }] })
  const withoutEnd = { name: 'w', start: '0 1 * * *', min_replicas: 1, max_replicas: 2 }
  test.each([
    ['bad cron syntax in start', windowWith({ start: '61 * * * *' }), ['/windows/0/start']],
    ['a cron with six fields', windowWith({ end: '0 0 6 * * *' }), ['/windows/0/end']],
    ['a cron that never matches', windowWith({ start: '0 0 31 4 *' }), ['/windows/0/start']],
    ['an unknown time zone', { ...schedule, timezone: 'Mars/Olympus' }, ['/timezone']],
    ['a fixed offset instead of a zone', { ...schedule, timezone: '+02:00' }, ['/timezone']],
    ['end equal to start', windowWith({ end: '0 22 * * *' }), ['/windows/0/end']],
    ['both end and duration_minutes', windowWith({ duration_minutes: 30 }), ['/windows/0/end']],
    ['neither end nor duration_minutes', { timezone: 'UTC', windows: [withoutEnd] }, ['/windows/0/end']],
    ['a duration beyond a week', { timezone: 'UTC', windows: [{ ...withoutEnd, duration_minutes: 10_081 }] }, ['/windows/0/duration_minutes']],
    ['min_replicas above max_replicas', windowWith({ min_replicas: 5, max_replicas: 4 }), ['/windows/0/min_replicas']],
    ['min_replicas below what the environment allows', windowWith({ min_replicas: 0 }), ['/windows/0/min_replicas']],
    ['max_replicas above what the environment allows', windowWith({ max_replicas: 101 }), ['/windows/0/max_replicas']],
    ['duplicate window names', { timezone: 'UTC', windows: [night, { ...batch, name: 'night' }] }, ['/windows/1/name']],
    ['no windows', { timezone: 'UTC', windows: [] }, ['/windows']],
    ['an unknown field', { ...schedule, extra: 1 }, ['/extra']],
  ])('%s', async (_, body, expected) => {
    const before = await ctx.query("select windows from scaling_schedules where environment_id = (select id from environments where name = 'prod')")
    const response = await ctx.request('PUT', path('fraud', 'prod'), body)
    expect(response.status).toBe(422)
    expect(response.body.code).toBe('VALIDATION_FAILED')
    expect(errorPaths(response)).toEqual(expected)
    expect(await ctx.query("select windows from scaling_schedules where environment_id = (select id from environments where name = 'prod')")).toEqual(before)
  })
})

describe('preview', () => {
  const previewPath = (query: string) => `${path('fraud', 'prod')}/preview${query}`

  test('the timeline over a day: the state at `from`, then each change with the window edge that caused it', async () => {
    await ctx.request('PUT', path('fraud', 'prod'), { timezone: 'Europe/Berlin', windows: [night, batch] })
    // 2025-06-02 (CEST, UTC+2): night 22:00–06:00, batch 23:30–01:00 local.
    const response = await ctx.request('GET', previewPath('?from=2025-06-02T12:00:00.000Z&to=2025-06-03T12:00:00.000Z'))
    expect(response.status).toBe(200)
    expect(response.body.data).toEqual({
      from: '2025-06-02T12:00:00.000Z',
      to: '2025-06-03T12:00:00.000Z',
      base: { min: 3, max: 10 },
      timeline: [
        { at: '2025-06-02T12:00:00.000Z', min: 3, max: 10, windows: [], cause: [] },
        { at: '2025-06-02T20:00:00.000Z', min: 1, max: 2, windows: ['night'], cause: [{ window: 'night', event: 'open' }] },
        { at: '2025-06-02T21:30:00.000Z', min: 4, max: 8, windows: ['night', 'batch'], cause: [{ window: 'batch', event: 'open' }] },
        { at: '2025-06-02T23:00:00.000Z', min: 1, max: 2, windows: ['night'], cause: [{ window: 'batch', event: 'close' }] },
        { at: '2025-06-03T04:00:00.000Z', min: 3, max: 10, windows: [], cause: [{ window: 'night', event: 'close' }] },
      ],
    })
  })

  test('defaults: from now to seven days later', async () => {
    const before = Date.now()
    const response = await ctx.request('GET', previewPath(''))
    expect(response.status).toBe(200)
    const from = Date.parse(response.body.data.from)
    expect(from).toBeGreaterThanOrEqual(before)
    expect(Date.parse(response.body.data.to) - from).toBe(7 * 86_400_000)
    // Two windows a day, each opening and closing.
    expect(response.body.data.timeline.length).toBeGreaterThan(20)
  })

  test('31 days is the longest range; beyond, or backwards, or not a date: 422', async () => {
    expect((await ctx.request('GET', previewPath('?from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z'))).status).toBe(200)
    for (const query of [
      '?from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:01Z',
      '?from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z',
      '?from=2025-01-01T00:00:00Z&to=2025-01-01T00:00:00Z',
      '?from=yesterday',
    ]) {
      const response = await ctx.request('GET', previewPath(query))
      expect({ query, status: response.status }).toEqual({ query, status: 422 })
      // The query parameter at fault, in the one path form (src/lib/errors.ts fieldPath).
      expect(errorPaths(response)).toEqual([query === '?from=yesterday' ? '/query/from' : '/query/to'])
    }
  })
})

describe('scaling events', () => {
  test('newest first, paginated, filtered by env; 404 for an unknown serve or env', async () => {
    await ctx.query(
      `insert into scaling_events (serve_id, environment_id, at, from_min, from_max, to_min, to_max, windows, outcome, error)
       select s.id, e.id, t.at, 3, 10, 1, 2, '["night"]', 'applied', null
       from serves s, environments e,
            (select timestamp('2025-06-01 20:00:00') as at union all select timestamp('2025-06-02 20:00:00') union all select timestamp('2025-06-03 20:00:00')) t
       where s.name = 'fraud' and e.name in ('prod', 'staging')`,
    )
    const page = await ctx.request('GET', '/api/v1/serve/fraud/scaling-events?env=prod&limit=2')
    expect(page.status).toBe(200)
    expect(page.body.pagination).toEqual({ page: 1, limit: 2, total: 3 })
    expect(page.body.data.map((event: { at: string }) => event.at)).toEqual(['2025-06-03T20:00:00.000Z', '2025-06-02T20:00:00.000Z'])
    expect(page.body.data[0]).toMatchObject({
      serve_name: 'fraud',
      env: 'prod',
      from: { min: 3, max: 10 },
      to: { min: 1, max: 2 },
      windows: ['night'],
      outcome: 'applied',
      error: null,
    })
    expect((await ctx.request('GET', '/api/v1/serve/fraud/scaling-events')).body.pagination.total).toBe(6)
    expect((await ctx.request('GET', '/api/v1/serve/nope/scaling-events')).status).toBe(404)
    expect((await ctx.request('GET', '/api/v1/serve/fraud/scaling-events?env=nope')).status).toBe(404)
  })
})

describe('scopes', () => {
  test('PUT, DELETE and the tick refuse anonymous calls (401) and read-only tokens (403); reads need only read', async () => {
    const readOnly = await ctx.createToken(['read'])
    const writer = await ctx.createToken(['write'])
    for (const [method, target, body] of [
      ['PUT', path('fraud', 'prod'), schedule],
      ['DELETE', path('fraud', 'prod'), undefined],
      ['POST', '/api/v1/scaling/tick', undefined],
    ] as const) {
      expect((await ctx.request(method, target, body, { authorization: '' })).status).toBe(401)
      expect((await ctx.request(method, target, body, { authorization: `Bearer ${readOnly}` })).status).toBe(403)
      expect((await ctx.request(method, target, body, { authorization: `Bearer ${writer}` })).status).toBe(403)
    }
    for (const target of [path('fraud', 'prod'), `${path('fraud', 'prod')}/preview`, '/api/v1/serve/fraud/scaling-events']) {
      expect((await ctx.request('GET', target, undefined, { authorization: `Bearer ${readOnly}` })).status).toBe(200)
      expect((await ctx.request('GET', target, undefined, { authorization: '' })).status).toBe(401)
    }
    expect((await ctx.request('GET', path('fraud', 'prod'))).body.data.windows).toEqual([night, batch])
  })
})
