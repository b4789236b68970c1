import { describe, expect, test } from 'bun:test'
import { createTestContext } from '../support/context'
import { environmentConfigs } from '../support/fixtures'

const configs = environmentConfigs

const ctx = await createTestContext()

const create = (name: string, overrides: Record<string, unknown> = {}) =>
  ctx.request('POST', '/api/v1/environment', { name, environment_configs: { ...configs, ...overrides } })

describe('environment API — happy path', () => {
  test('POST creates the environment, answers 201 in the envelope, and the row is in MySQL', async () => {
    const response = await create('prod')
    expect(response.status).toBe(201)
    expect(response.body.status).toBe('SUCCESS')
    expect(response.body.data).toMatchObject({
      name: 'prod',
      environment_configs: { ...configs, cluster_driver: 'kubernetes', kube_context: '' },
    })
    expect(response.body.data.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    const rows = await ctx.query('select * from environments where name = ?', ['prod'])
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ namespace: 'ml-serve', subnets: 'subnet-abc123, subnet-def456', cluster_driver: 'kubernetes' })
  })

  test('subnets is optional and defaults to empty; required-but-empty fields accept ""', async () => {
    const { subnets: _omitted, ...withoutSubnets } = configs
    const response = await ctx.request('POST', '/api/v1/environment', {
      name: 'staging',
      environment_configs: { ...withoutSubnets, security_group: '', ft_redis_url: '', workflow_url: '' },
    })
    expect(response.status).toBe(201)
    expect(response.body.data.environment_configs).toMatchObject({ subnets: '', security_group: '', ft_redis_url: '' })
  })

  test('GET one returns it', async () => {
    const response = await ctx.request('GET', '/api/v1/environment/prod')
    expect(response.status).toBe(200)
    expect(response.body.data.environment_configs.cluster_name).toBe('prod-k8s-cluster')
  })

  test('PATCH merges the given keys into the stored ones (nested form)', async () => {
    const response = await ctx.request('PATCH', '/api/v1/environment/prod', {
      environment_configs: { domain_suffix: '.updated-domain.com' },
    })
    expect(response.status).toBe(200)
    expect(response.body.data.environment_configs).toMatchObject({ ...configs, domain_suffix: '.updated-domain.com' })
    const [row] = await ctx.query<{ domain_suffix: string; namespace: string }>('select * from environments where name = ?', ['prod'])
    expect(row).toMatchObject({ domain_suffix: '.updated-domain.com', namespace: 'ml-serve' })
  })

  test("PATCH accepts the original's flat form too", async () => {
    const response = await ctx.request('PATCH', '/api/v1/environment/prod', { namespace: 'ml-serve-2', cluster_driver: 'dcm' })
    expect(response.status).toBe(200)
    expect(response.body.data.environment_configs).toMatchObject({ namespace: 'ml-serve-2', cluster_driver: 'dcm', domain_suffix: '.updated-domain.com' })
  })

  test('list is ordered by name and paginated', async () => {
    for (const name of ['env-c', 'env-a', 'env-b']) expect((await create(name)).status).toBe(201)
    const first = await ctx.request('GET', '/api/v1/environment?limit=2&page=1')
    expect(first.status).toBe(200)
    expect(first.body.data.map((e: { name: string }) => e.name)).toEqual(['env-a', 'env-b'])
    expect(first.body.pagination).toEqual({ page: 1, limit: 2, total: 5 })
    const third = await ctx.request('GET', '/api/v1/environment?limit=2&page=3')
    expect(third.body.data.map((e: { name: string }) => e.name)).toEqual(['staging'])
    const prefixed = await ctx.request('GET', '/api/v1/environment?name_prefix=env-')
    expect(prefixed.body.pagination.total).toBe(3)
  })

  test('a LIKE wildcard in name_prefix matches literally', async () => {
    const response = await ctx.request('GET', '/api/v1/environment?name_prefix=%25')
    expect(response.status).toBe(200)
    expect(response.body.data).toEqual([])
  })

  test('DELETE removes the row', async () => {
    const response = await ctx.request('DELETE', '/api/v1/environment/env-c')
    expect(response.status).toBe(200)
    expect(await ctx.query('select id from environments where name = ?', ['env-c'])).toHaveLength(0)
  })
})

describe('environment API — errors', () => {
  test('duplicate name → 409 in the error envelope, nothing written', async () => {
    const response = await create('prod')
    expect(response.status).toBe(409)
    expect(response.body).toMatchObject({ status: 'ERROR', code: 'ALREADY_EXISTS', message: 'Environment with name prod already exists' })
    expect(response.body.request_id).toBe(response.headers.get('x-request-id'))
    expect(await ctx.query('select id from environments where name = ?', ['prod'])).toHaveLength(1)
  })

  test.each(['domain_suffix', 'cluster_name', 'namespace', 'security_group', 'ft_redis_url', 'workflow_url'])(
    'missing %s → 422 naming the field',
    async (field) => {
      const body = { ...configs } as Record<string, unknown>
      delete body[field]
      const response = await ctx.request('POST', '/api/v1/environment', { name: `miss-${field.replaceAll('_', '-')}`.slice(0, 20), environment_configs: body })
      expect(response.status).toBe(422)
      expect(response.body.code).toBe('VALIDATION_FAILED')
      expect(response.body.errors.map((e: { path: string }) => e.path)).toContain(`/environment_configs/${field}`)
    },
  )

  test.each(['Prod', 'prod_1', '-prod', 'prod-', '1prod', '', 'a'.repeat(21), 'pröd', '../x'])('bad name %p → 422', async (name) => {
    const response = await create(name)
    expect(response.status).toBe(422)
    expect(response.body.errors.map((e: { path: string }) => e.path)).toContain('/name')
  })

  test('a bad namespace or domain suffix → 422', async () => {
    expect((await create('bad-ns', { namespace: 'Not_A_Label' })).status).toBe(422)
    expect((await create('bad-domain', { domain_suffix: 'has space.com' })).status).toBe(422)
    expect((await create('bad-driver', { cluster_driver: 'nomad' })).status).toBe(422)
  })

  test('unknown fields are refused rather than silently dropped', async () => {
    const response = await create('extra', { colour: 'blue' })
    expect(response.status).toBe(422)
    expect(await ctx.query('select id from environments where name = ?', ['extra'])).toHaveLength(0)
  })

  test('malformed JSON → 400', async () => {
    const response = await ctx.request('POST', '/api/v1/environment', '{"name": ', { 'content-type': 'application/json' })
    expect(response.status).toBe(400)
    expect(response.body.status).toBe('ERROR')
  })

  test('unknown environment → 404 on GET, PATCH and DELETE', async () => {
    for (const method of ['GET', 'PATCH', 'DELETE']) {
      const response = await ctx.request(method, '/api/v1/environment/nope', method === 'PATCH' ? { namespace: 'x' } : undefined)
      expect(response.status).toBe(404)
      expect(response.body).toMatchObject({ status: 'ERROR', code: 'NOT_FOUND', message: 'Environment with name nope not found' })
    }
  })

  test('PATCH with an invalid value → 422 and the stored row is unchanged', async () => {
    const response = await ctx.request('PATCH', '/api/v1/environment/prod', { environment_configs: { namespace: 'UPPER' } })
    expect(response.status).toBe(422)
    const [row] = await ctx.query<{ namespace: string }>('select namespace from environments where name = ?', ['prod'])
    expect(row?.namespace).toBe('ml-serve-2')
  })

  test('bad pagination → 422', async () => {
    expect((await ctx.request('GET', '/api/v1/environment?limit=0')).status).toBe(422)
    expect((await ctx.request('GET', '/api/v1/environment?limit=201')).status).toBe(422)
    expect((await ctx.request('GET', '/api/v1/environment?page=abc')).status).toBe(422)
  })

  test('unknown route → 404 in the same envelope', async () => {
    const response = await ctx.request('GET', '/api/v1/nothing-here')
    expect(response.status).toBe(404)
    expect(response.body).toMatchObject({ status: 'ERROR', code: 'ROUTE_NOT_FOUND' })
  })
})

describe('environment API — PATCH leaves unnamed fields alone', () => {
  test('a PATCH that does not name cluster_driver keeps the stored one', async () => {
    expect((await ctx.request('PATCH', '/api/v1/environment/prod', { cluster_driver: 'dcm' })).status).toBe(200)
    const response = await ctx.request('PATCH', '/api/v1/environment/prod', { environment_configs: { workflow_url: '' } })
    expect(response.body.data.environment_configs.cluster_driver).toBe('dcm')
  })
})
