import { describe, expect, test } from 'bun:test'
import { createTestContext } from '../support/context'
import { environmentBody } from '../support/fixtures'

const ctx = await createTestContext()

const create = (name: string, overrides: Record<string, unknown> = {}) =>
  ctx.request('POST', '/api/v1/serve', { name, type: 'api', description: 'Production model serving', space: 'ml-team', ...overrides })

const names = (response: { body: { data: { name: string }[] } }) => response.body.data.map((s) => s.name)

describe('serve API — happy path', () => {
  test('POST creates the serve, answers 201 in the envelope, and the row is in MySQL', async () => {
    const response = await create('my-model-serve')
    expect(response.status).toBe(201)
    expect(response.body).toMatchObject({
      status: 'SUCCESS',
      message: 'Serve created',
      data: { name: 'my-model-serve', type: 'api', description: 'Production model serving', space: 'ml-team' },
    })
    expect(response.body.data.created_at).toMatch(/Z$/)
    expect(await ctx.query('select type, space from serves where name = ?', ['my-model-serve'])).toEqual([{ type: 'api', space: 'ml-team' }])
    const [audit] = await ctx.query<{ action: string; outcome: string }>("select action, outcome from audit_log where resource_type = 'serve'")
    expect(audit).toEqual({ action: 'POST /api/v1/serve', outcome: 'success' })
  })

  test('description and space are optional; a 32-character name is the longest allowed', async () => {
    const longest = `w${'x'.repeat(30)}1`
    const response = await ctx.request('POST', '/api/v1/serve', { name: longest, type: 'workflow' })
    expect(response.status).toBe(201)
    expect(response.body.data).toMatchObject({ name: longest, type: 'workflow', description: '', space: '' })
  })

  test('list is ordered by name, paginated, and filtered by space, type and name prefix', async () => {
    for (const [name, space] of [['fraud-b', 'risk'], ['fraud-a', 'risk'], ['recsys', 'growth']] as const) {
      expect((await create(name, { space })).status).toBe(201)
    }
    const first = await ctx.request('GET', '/api/v1/serve?limit=2&page=1')
    expect(first.status).toBe(200)
    expect(names(first)).toEqual(['fraud-a', 'fraud-b'])
    expect(first.body.pagination).toEqual({ page: 1, limit: 2, total: 5 })
    expect(names(await ctx.request('GET', '/api/v1/serve?space=risk'))).toEqual(['fraud-a', 'fraud-b'])
    expect(names(await ctx.request('GET', '/api/v1/serve?type=workflow'))).toHaveLength(1)
    expect(names(await ctx.request('GET', '/api/v1/serve?name_prefix=fraud-&space=risk&type=api'))).toEqual(['fraud-a', 'fraud-b'])
    expect(names(await ctx.request('GET', '/api/v1/serve?name_prefix=%25'))).toEqual([])
  })

  test('GET one is the overview: the serve, its infra configs, latest artifacts and where it is deployed', async () => {
    expect((await ctx.request('POST', '/api/v1/environment', environmentBody('prod'))).status).toBe(201)
    const infra = { backend_type: 'fastapi', cores: 4, memory: 8, min_replicas: 2, max_replicas: 10, node_capacity_type: 'spot' }
    expect((await ctx.request('POST', '/api/v1/serve/my-model-serve/infra-config/prod', { api_serve_infra_config: infra })).status).toBe(201)
    const image = 'registry.example.com/ml/my-model:v1'
    expect((await ctx.request('POST', '/api/v1/artifact', { serve_name: 'my-model-serve', version: 'v1', image })).status).toBe(201)
    const response = await ctx.request('GET', '/api/v1/serve/my-model-serve')
    expect(response.status).toBe(200)
    expect(response.body.data).toMatchObject({
      name: 'my-model-serve',
      type: 'api',
      infra_configs: [{ env: 'prod', serve_type: 'api', api_serve_infra_config: { ...infra, target_cpu_utilization: 70, additional_hosts: [] } }],
      latest_artifacts: [{ version: 'v1', image, status: 'succeeded' }],
      deployed_environments: [],
    })
  })

  test('PATCH changes description and space only', async () => {
    const response = await ctx.request('PATCH', '/api/v1/serve/my-model-serve', { space: 'risk' })
    expect(response.status).toBe(200)
    expect(response.body.data).toMatchObject({ space: 'risk', description: 'Production model serving', type: 'api' })
    const described = await ctx.request('PATCH', '/api/v1/serve/my-model-serve', { description: '' })
    expect(described.body.data).toMatchObject({ space: 'risk', description: '' })
  })

  test('DELETE removes the serve with its infra configs and artifacts', async () => {
    const response = await ctx.request('DELETE', '/api/v1/serve/my-model-serve')
    expect(response.status).toBe(200)
    expect(response.body.data).toEqual({ name: 'my-model-serve' })
    expect(await ctx.query('select id from serves where name = ?', ['my-model-serve'])).toHaveLength(0)
    expect(await ctx.query('select id from infra_configs')).toHaveLength(0)
    expect(await ctx.query('select id from artifacts')).toHaveLength(0)
    // Its environment is free again.
    expect((await ctx.request('DELETE', '/api/v1/environment/prod')).status).toBe(200)
  })
})

describe('serve API — errors', () => {
  test('duplicate name → 409 "Serve with name X already exists", nothing written', async () => {
    const response = await create('fraud-a')
    expect(response.status).toBe(409)
    expect(response.body).toMatchObject({ status: 'ERROR', code: 'ALREADY_EXISTS', message: 'Serve with name fraud-a already exists' })
    expect(await ctx.query('select id from serves where name = ?', ['fraud-a'])).toHaveLength(1)
  })

  test.each(['My-model', 'my_model', '-model', 'model-', '1model', '', 'a'.repeat(33), 'mödel', 'my.model', '../x'])(
    'bad name %p → 422 naming /name',
    async (name) => {
      const response = await create(name)
      expect(response.status).toBe(422)
      expect(response.body.code).toBe('VALIDATION_FAILED')
      expect(response.body.errors.map((e: { path: string }) => e.path)).toContain('/name')
    },
  )

  test('a bad or missing type, unknown fields, a bad space → 422', async () => {
    for (const body of [
      { name: 'bad-type', type: 'batch' },
      { name: 'no-type' },
      { name: 'extra', type: 'api', colour: 'blue' },
      { name: 'bad-space', type: 'api', space: 'ml team!' },
    ]) {
      const response = await ctx.request('POST', '/api/v1/serve', body)
      expect(response.status).toBe(422)
    }
    expect(await ctx.query("select id from serves where name in ('bad-type', 'no-type', 'extra', 'bad-space')")).toHaveLength(0)
  })

  test('PATCH cannot rename or retype: 422', async () => {
    expect((await ctx.request('PATCH', '/api/v1/serve/fraud-a', { name: 'fraud-z' })).status).toBe(422)
    expect((await ctx.request('PATCH', '/api/v1/serve/fraud-a', { type: 'workflow' })).status).toBe(422)
  })

  test('unknown serve → 404 on GET, PATCH and DELETE', async () => {
    for (const method of ['GET', 'PATCH', 'DELETE']) {
      const response = await ctx.request(method, '/api/v1/serve/nope', method === 'PATCH' ? { space: 'x' } : undefined)
      expect(response.status).toBe(404)
      expect(response.body).toMatchObject({ status: 'ERROR', code: 'NOT_FOUND', message: 'Serve with name nope not found' })
    }
  })

  test('bad list filters → 422', async () => {
    expect((await ctx.request('GET', '/api/v1/serve?type=batch')).status).toBe(422)
    expect((await ctx.request('GET', '/api/v1/serve?limit=0')).status).toBe(422)
  })

  test('a query or path parameter at fault is named /query/… or /params/…', async () => {
    const paths = async (path: string) => ((await ctx.request('GET', path)).body.errors as { path: string }[]).map((e) => e.path)
    expect(await paths('/api/v1/serve?type=batch')).toEqual(['/query/type'])
    // A number out of range, which Elysia checks after coercing it, without naming it.
    expect(await paths('/api/v1/serve?limit=0')).toEqual(['/query/limit'])
    expect(await paths('/api/v1/serve?page=2&limit=201')).toEqual(['/query/limit'])
    expect(await paths('/api/v1/serve/fraud-a/deployments/0')).toEqual(['/params/revision'])
    expect(await paths('/api/v1/serve/fraud-a/deployments/one')).toEqual(['/params/revision'])
  })
})
