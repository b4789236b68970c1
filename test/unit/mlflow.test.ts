import { afterAll, describe, expect, test } from 'bun:test'
import { MlflowClient, parseModelUri } from '../../src/clients/mlflow'
import { AppError } from '../../src/lib/errors'

const RUN = 'a'.repeat(32)

describe('parseModelUri', () => {
  test.each([
    [`runs:/${RUN}/model`, { scheme: 'runs', runId: RUN, artifactPath: 'model' }],
    [`mlflow-artifacts:/45/${RUN}/artifacts/model`, { scheme: 'mlflow-artifacts', experimentId: '45', runId: RUN, artifactPath: 'model' }],
    ['models:/fraud/3', { scheme: 'models', name: 'fraud', version: '3' }],
    ['models:/fraud/Production', { scheme: 'models', name: 'fraud', stage: 'Production' }],
    ['models:/fraud@champion', { scheme: 'models', name: 'fraud', alias: 'champion' }],
    ['s3://bucket/path/model', { scheme: 'object-store', url: 's3://bucket/path/model' }],
    ['gs://bucket/model', { scheme: 'object-store', url: 'gs://bucket/model' }],
  ])('%s', (uri, expected) => {
    expect(parseModelUri(uri)).toEqual(expected as never)
  })

  test.each([
    'http://evil.example/model',
    'file:///etc/passwd',
    'runs:/not-a-run/model',
    `runs:/${RUN}`,
    `runs:/${RUN}/../secrets`,
    'mlflow-artifacts:/x/y/artifacts/model',
    'models:/onlyname',
    'models:/a/1/extra',
    's3://',
    'model with spaces',
    '',
  ])('refuses %p with a 422 naming model_uri', (uri) => {
    let error: unknown
    try {
      parseModelUri(uri)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(AppError)
    expect((error as AppError).status).toBe(422)
    expect((error as AppError).errors?.[0]?.path).toBe('/model_uri')
  })
})

describe('MlflowClient.validate against a fake tracking server', () => {
  const seen: { path: string; authorization: string | null }[] = []
  let mode: 'ok' | 'down' = 'ok'
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch(request) {
      const url = new URL(request.url)
      seen.push({ path: url.pathname + url.search, authorization: request.headers.get('authorization') })
      if (mode === 'down') return new Response('boom', { status: 500 })
      const q = url.searchParams
      switch (url.pathname) {
        case '/api/2.0/mlflow/runs/get':
          return q.get('run_id') === RUN ? Response.json({ run: { info: { run_id: RUN } } }) : Response.json({ error_code: 'RESOURCE_DOES_NOT_EXIST' }, { status: 404 })
        case '/api/2.0/mlflow/artifacts/list':
          return Response.json(q.get('path') === 'model' ? { files: [{ path: 'model/MLmodel' }, { path: 'model/model.pkl' }] } : { files: [] })
        case '/api/2.0/mlflow/model-versions/get':
          return q.get('name') === 'fraud' && q.get('version') === '3' ? Response.json({ model_version: {} }) : Response.json({ error_code: 'RESOURCE_DOES_NOT_EXIST' }, { status: 404 })
        default:
          return Response.json({ error_code: 'RESOURCE_DOES_NOT_EXIST' }, { status: 404 })
      }
    },
  })
  afterAll(() => server.stop(true))
  const client = new MlflowClient({ trackingUri: `http://127.0.0.1:${server.port}`, username: 'ml', password: 's3cret-pw', timeoutMs: 2_000 })

  const statusOf = async (uri: string) => {
    try {
      await client.validate(parseModelUri(uri))
      return 200
    } catch (error) {
      return (error as AppError).status
    }
  }

  test('an existing run with an MLmodel passes; credentials go as basic auth', async () => {
    expect(await statusOf(`runs:/${RUN}/model`)).toBe(200)
    expect(await statusOf(`mlflow-artifacts:/45/${RUN}/artifacts/model`)).toBe(200)
    expect(seen.at(-1)?.authorization).toBe(`Basic ${btoa('ml:s3cret-pw')}`)
  })

  test('a missing run, a directory without MLmodel, an unknown model version → 422', async () => {
    expect(await statusOf(`runs:/${'b'.repeat(32)}/model`)).toBe(422)
    expect(await statusOf(`runs:/${RUN}/other`)).toBe(422)
    expect(await statusOf('models:/fraud/4')).toBe(422)
    expect(await statusOf('models:/fraud/3')).toBe(200)
  })

  test('a failing or unreachable tracking server → 502, without the password in the message', async () => {
    mode = 'down'
    let error: unknown
    try {
      await client.validate(parseModelUri(`runs:/${RUN}/model`))
    } catch (caught) {
      error = caught
    }
    expect((error as AppError).status).toBe(502)
    expect((error as AppError).message).not.toContain('s3cret-pw')
    const unreachable = new MlflowClient({ trackingUri: 'http://127.0.0.1:1', timeoutMs: 500 })
    await expect(unreachable.validate(parseModelUri('models:/fraud/3'))).rejects.toMatchObject({ status: 502 })
  })
})
