/** One-click MLflow model deploy and undeploy, against MySQL, a fake MLflow and a fake Kubernetes API. */
import { afterAll, describe, expect, test } from 'bun:test'
import { modelArtifactVersion } from '../../src/modules/deployment/one-click'
import { createTestContext } from '../support/context'
import { FakeKubernetes } from '../support/fake-kubernetes'
import { environmentBody } from '../support/fixtures'

const RUN = '0123456789abcdef0123456789abcdef'
const MODEL_URI = `mlflow-artifacts:/45/${RUN}/artifacts/model`
const NS = 'ml-serve'

const mlflow = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  fetch(request) {
    const url = new URL(request.url)
    if (url.pathname === '/api/2.0/mlflow/runs/get') {
      return url.searchParams.get('run_id') === RUN ? Response.json({ run: { info: { run_id: RUN } } }) : Response.json({ error_code: 'RESOURCE_DOES_NOT_EXIST' }, { status: 404 })
    }
    if (url.pathname === '/api/2.0/mlflow/artifacts/list') return Response.json({ files: [{ path: 'model/MLmodel' }] })
    return Response.json({ error_code: 'RESOURCE_DOES_NOT_EXIST' }, { status: 404 })
  },
})
const fake = new FakeKubernetes()
afterAll(() => {
  fake.stop()
  mlflow.stop(true)
})

const settings = {
  ENV: 'prod',
  CLUSTER_REQUEST_ATTEMPTS: '1',
  DEFAULT_RUNTIME: 'registry.example.com/mlflow-runtime:1.4',
  MLFLOW_TRACKING_URI: `http://127.0.0.1:${mlflow.port}`,
  MLFLOW_TRACKING_USERNAME: 'ml',
  MLFLOW_TRACKING_PASSWORD: 'one-click-secret-pw',
}
const ctx = await createTestContext(settings, { clusterDrivers: fake.drivers(settings) })
await ctx.request('POST', '/api/v1/environment', environmentBody('prod', { namespace: NS }))

const body = { serve_name: 'my-model', model_uri: MODEL_URI, env: 'prod', cores: 4, memory: 8, node_capacity: 'spot', min_replicas: 1, max_replicas: 3 }

describe('deploy-model — happy path', () => {
  test('creates the serve, its infra config and an artifact on DEFAULT_RUNTIME, and deploys it', async () => {
    const response = await ctx.request('POST', '/api/v1/serve/deploy-model', body)
    expect(response.status).toBe(201)
    const version = modelArtifactVersion(MODEL_URI)
    expect(response.body.data).toMatchObject({ serve_name: 'my-model', env: 'prod', reason: 'one-click', artifact_version: version, image: 'registry.example.com/mlflow-runtime:1.4', status: 'deploying' })
    expect((await ctx.request('GET', '/api/v1/serve/my-model')).body.data).toMatchObject({ type: 'api' })
    const infra = await ctx.request('GET', '/api/v1/serve/my-model/infra-config/prod')
    expect(infra.body.data.api_serve_infra_config).toMatchObject({ backend_type: 'fastapi', cores: 4, memory: 8, min_replicas: 1, max_replicas: 3, node_capacity_type: 'spot' })
    const deployment = fake.get('Deployment', NS, 'my-model-prod') as { spec: { template: { spec: { containers: { env: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string } } }[] }[] } } } }
    const env = deployment.spec.template.spec.containers[0]?.env ?? []
    expect(env).toContainEqual({ name: 'MLFLOW_MODEL_URI', value: MODEL_URI })
    expect(env).toContainEqual({ name: 'MODEL_VERSION', value: version })
    expect(env).toContainEqual({ name: 'MLFLOW_TRACKING_URI', value: settings.MLFLOW_TRACKING_URI })
    expect(env.find((e) => e.name === 'MLFLOW_TRACKING_PASSWORD')?.valueFrom?.secretKeyRef?.name).toBe('my-model-prod-mlflow')
    expect(JSON.stringify(deployment)).not.toContain('one-click-secret-pw')
    expect(JSON.stringify(fake.get('Secret', NS, 'my-model-prod-mlflow'))).toContain('one-click-secret-pw')
  })

  test('the same model with the same values again → 409 once active; new values update the same serve', async () => {
    const generation = Number(fake.get('Deployment', NS, 'my-model-prod')?.metadata.generation ?? 1)
    fake.setStatus('Deployment', NS, 'my-model-prod', { observedGeneration: generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 })
    await ctx.deployment.tracker.tick()
    const again = await ctx.request('POST', '/api/v1/serve/deploy-model', body)
    expect(again.status).toBe(409)
    expect(again.body.code).toBe('ALREADY_DEPLOYED')
    const bigger = await ctx.request('POST', '/api/v1/serve/deploy-model', { ...body, max_replicas: 6 })
    expect(bigger.status).toBe(201)
    expect(bigger.body.data.revision).toBe(2)
    expect(fake.get('HorizontalPodAutoscaler', NS, 'my-model-prod')).toMatchObject({ spec: { maxReplicas: 6 } })
    expect(await ctx.query("select id from serves where name = 'my-model'")).toHaveLength(1)
    expect(await ctx.query('select id from artifacts')).toHaveLength(1)
  })

  test('undeploy-model stops it and keeps its config', async () => {
    const generation = Number(fake.get('Deployment', NS, 'my-model-prod')?.metadata.generation ?? 1)
    fake.setStatus('Deployment', NS, 'my-model-prod', { observedGeneration: generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 })
    await ctx.deployment.tracker.tick()
    const response = await ctx.request('POST', '/api/v1/serve/undeploy-model', { serve_name: 'my-model', env: 'prod' })
    expect(response.status).toBe(200)
    expect(response.body.data.undeployed_revision).toBe(2)
    expect(fake.get('Deployment', NS, 'my-model-prod')).toBeUndefined()
    expect((await ctx.request('GET', '/api/v1/serve/my-model/infra-config/prod')).status).toBe(200)
  })
})

describe('deploy-model — errors', () => {
  test('unknown environment → 404, as the seed says', async () => {
    const response = await ctx.request('POST', '/api/v1/serve/deploy-model', { ...body, serve_name: 'other', env: 'nowhere' })
    expect(response.status).toBe(404)
    expect(await ctx.query("select id from serves where name = 'other'")).toHaveLength(0)
  })

  test('a model URI of an unknown scheme → 422; a run MLflow does not know → 422 MODEL_NOT_FOUND; nothing created', async () => {
    const scheme = await ctx.request('POST', '/api/v1/serve/deploy-model', { ...body, serve_name: 'other', model_uri: 'ftp://host/model' })
    expect(scheme.status).toBe(422)
    expect(scheme.body.errors[0].path).toBe('/model_uri')
    const missing = await ctx.request('POST', '/api/v1/serve/deploy-model', { ...body, serve_name: 'other', model_uri: `runs:/${'f'.repeat(32)}/model` })
    expect(missing.status).toBe(422)
    expect(missing.body.code).toBe('MODEL_NOT_FOUND')
    expect(await ctx.query("select id from serves where name = 'other'")).toHaveLength(0)
  })

  test('limits as in the original: cores 1–64, memory 1–512, replicas 1–100, min ≤ max; a bad serve name', async () => {
    for (const bad of [{ cores: 65 }, { memory: 0.5 }, { max_replicas: 101 }, { min_replicas: 0 }, { serve_name: 'Bad_Name' }]) {
      expect((await ctx.request('POST', '/api/v1/serve/deploy-model', { ...body, serve_name: 'other', ...bad })).status).toBe(422)
    }
    const inverted = await ctx.request('POST', '/api/v1/serve/deploy-model', { ...body, serve_name: 'other', min_replicas: 5, max_replicas: 2 })
    expect(inverted.status).toBe(422)
    expect(inverted.body.errors[0].path).toBe('/min_replicas')
  })

  test('needs the deploy scope', async () => {
    const writer = await ctx.createToken(['read', 'write'])
    expect((await ctx.request('POST', '/api/v1/serve/deploy-model', body, { authorization: `Bearer ${writer}` })).status).toBe(403)
    expect((await ctx.request('POST', '/api/v1/serve/undeploy-model', { serve_name: 'my-model', env: 'prod' }, { authorization: `Bearer ${writer}` })).status).toBe(403)
  })
})
