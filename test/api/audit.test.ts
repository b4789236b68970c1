import { describe, expect, test } from 'bun:test'
import { createTestContext } from '../support/context'
import { environmentBody } from '../support/fixtures'

const ctx = await createTestContext()

interface AuditRow {
  actor_name: string
  action: string
  resource_type: string
  resource_name: string
  outcome: string
  status_code: number
  request_id: string
  summary: unknown
}
const auditFor = (name: string) => ctx.query<AuditRow>('select * from audit_log where resource_name = ? order by id', [name])

describe('audit log — every mutation is recorded', () => {
  test('create, update and delete of an environment each write one success entry with who, what and the request id', async () => {
    await ctx.request('POST', '/api/v1/environment', environmentBody('audited'), { 'x-request-id': 'req-create' })
    await ctx.request('PATCH', '/api/v1/environment/audited', { namespace: 'other' }, { 'x-request-id': 'req-patch' })
    await ctx.request('DELETE', '/api/v1/environment/audited', undefined, { 'x-request-id': 'req-delete' })
    const rows = await auditFor('audited')
    expect(rows.map((r) => [r.action, r.outcome, r.status_code, r.request_id, r.actor_name])).toEqual([
      ['POST /api/v1/environment', 'success', 201, 'req-create', 'admin'],
      ['PATCH /api/v1/environment/:environment_name', 'success', 200, 'req-patch', 'admin'],
      ['DELETE /api/v1/environment/:environment_name', 'success', 200, 'req-delete', 'admin'],
    ])
    expect(rows[1]?.summary).toEqual({ environment_configs: { namespace: 'other' } })
  })

  test('a refused mutation is recorded as a failure, and writes no success entry', async () => {
    await ctx.request('POST', '/api/v1/environment', environmentBody('twice'))
    const again = await ctx.request('POST', '/api/v1/environment', environmentBody('twice'))
    expect(again.status).toBe(409)
    await Bun.sleep(50)
    const rows = await auditFor('twice')
    expect(rows.map((r) => [r.outcome, r.status_code])).toEqual([
      ['success', 201],
      ['failure', 409],
    ])
  })

  test('a forbidden attempt is attributed to its token', async () => {
    const reader = await ctx.createToken(['read'], 'nosy-reader')
    await ctx.request('DELETE', '/api/v1/environment/twice', undefined, { authorization: `Bearer ${reader}` })
    await Bun.sleep(50)
    const rows = await ctx.query<AuditRow>("select * from audit_log where actor_name = 'nosy-reader'")
    expect(rows.map((r) => [r.outcome, r.status_code, r.resource_type, r.resource_name])).toEqual([['failure', 403, 'environment', 'twice']])
  })
})

describe('GET /api/v1/audit', () => {
  test('filters by resource, actor, action, outcome and time; newest first; paginated', async () => {
    const all = await ctx.request('GET', '/api/v1/audit?resource_type=environment&resource_name=audited')
    expect(all.status).toBe(200)
    expect(all.body.data.map((e: { action: string }) => e.action)).toEqual([
      'DELETE /api/v1/environment/:environment_name',
      'PATCH /api/v1/environment/:environment_name',
      'POST /api/v1/environment',
    ])
    expect(all.body.data[0]).toMatchObject({ actor: { name: 'admin' }, outcome: 'success', request_id: 'req-delete' })
    const failures = await ctx.request('GET', '/api/v1/audit?outcome=failure')
    expect(failures.body.data.every((e: { outcome: string }) => e.outcome === 'failure')).toBe(true)
    const byActor = await ctx.request('GET', '/api/v1/audit?actor=nosy-reader')
    expect(byActor.body.pagination.total).toBe(1)
    const future = await ctx.request('GET', `/api/v1/audit?from=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`)
    expect(future.body.data).toEqual([])
    const paged = await ctx.request('GET', '/api/v1/audit?limit=1&page=2&resource_name=audited')
    expect(paged.body.data[0].action).toBe('PATCH /api/v1/environment/:environment_name')
  })

  test('is admin-only', async () => {
    const writer = await ctx.createToken(['read', 'write', 'deploy'])
    expect((await ctx.request('GET', '/api/v1/audit', undefined, { authorization: `Bearer ${writer}` })).status).toBe(403)
  })
})
