/**
 * A drop-in successor: the original's own integration flows (kgaurkar-d11/darwin,
 * ml-serve-app/tests/integration: the artifact flow, the infra update flow, the one-click flow),
 * replayed with their request bodies and their assertions on status codes and fields, against this
 * service with a fake Artifact Builder and a fake Kubernetes API. The only deliberate difference kept:
 * `GET /api/v1/environment/{name}` answers inside the envelope (the original answered the bare row,
 * an inconsistency of its own); asserted below in our form.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { createArtifactPoller } from '../../src/modules/artifact/poller'
import { artifactDepsFor } from '../../src/modules/artifact/service'
import { createTestContext } from '../support/context'
import { startFakeArtifactBuilder } from '../support/fake-artifact-builder'
import { FakeKubernetes } from '../support/fake-kubernetes'

const builder = startFakeArtifactBuilder()
const cluster = new FakeKubernetes()
afterAll(() => {
  builder.stop()
  cluster.stop()
})
const settings = { ENV: 'prod', ARTIFACT_BUILDER_URL: builder.url, CLUSTER_REQUEST_ATTEMPTS: '1', DEFAULT_RUNTIME: 'registry.example.com/mlflow-runtime:1.0' }
const ctx = await createTestContext(settings, { clusterDrivers: cluster.drivers(settings) })
const api = (method: string, path: string, body?: unknown) => ctx.request(method, path, body)
const ENV = 'integration-test-env'
const TEST_MODEL_URI = 'models:/iris-classifier/1'
/** The one-click body of the original's flows: one spot replica of 1 core and 2 GiB, artifact version v1. */
const oneClickBody = (serveName: string) => ({
  serve_name: serveName,
  artifact_version: 'v1',
  model_uri: TEST_MODEL_URI,
  env: ENV,
  cores: 1,
  memory: 2,
  min_replicas: 1,
  max_replicas: 1,
  node_capacity: 'spot',
})

// conftest.py: the shared environment, with no domain (a kind cluster reached by path).
const environment = await api('POST', '/api/v1/environment', {
  name: ENV,
  environment_configs: { domain_suffix: '', cluster_name: 'kind', namespace: 'serve', security_group: '', ft_redis_url: '', workflow_url: '' },
})
expect([200, 201, 409]).toContain(environment.status)

describe("the original's artifact flow (test_artifact_flow.py)", () => {
  test('create a serve, list serves, the overview names it as data.serve', async () => {
    const created = await api('POST', '/api/v1/serve', { name: 'integration-artifact-serve', type: 'api', description: 'Integration test serve', space: 'test-space' })
    expect([200, 201, 409]).toContain(created.status)
    expect(created.body.data.name).toBe('integration-artifact-serve')
    expect(created.body.data.type).toBe('api')
    const listed = await api('GET', '/api/v1/serve')
    expect(listed.status).toBe(200)
    expect(Array.isArray(listed.body.data)).toBe(true)
    await api('POST', '/api/v1/serve', { name: 'integration-overview-serve', type: 'api', description: 'Test serve for overview', space: 'test-space' })
    const overview = await api('GET', '/api/v1/serve/integration-overview-serve')
    expect(overview.status).toBe(200)
    expect('serve' in overview.body.data).toBe(true)
    expect(overview.body.data.serve.name).toBe('integration-overview-serve')
  })

  test('an artifact from a git repo triggers a build', async () => {
    await api('POST', '/api/v1/serve', { name: 'artifact-build-test', type: 'api', description: 'Test artifact build', space: 'test-space' })
    const response = await api('POST', '/api/v1/artifact', {
      serve_name: 'artifact-build-test',
      version: 'v1.0.0',
      github_repo_url: 'https://github.com/bmaelum/fastapi-hello-world.git',
      branch: 'main',
    })
    expect([200, 201]).toContain(response.status)
    const data = response.body.data
    expect('job_id' in data || 'artifact' in data || 'serve_name' in data).toBe(true)
    expect(builder.requests.some((r) => r.path === '/build_with_dockerfile')).toBe(true)
  })

  test("infra config in the original's shape (on-demand too); GET answers data.backend_type and data.fast_api_config", async () => {
    await api('POST', '/api/v1/serve', { name: 'infra-config-test-serve', type: 'api', description: 'Test infra config', space: 'test-space' })
    const created = await api('POST', `/api/v1/serve/infra-config-test-serve/infra-config/${ENV}`, {
      api_serve_config: { backend_type: 'fastapi', fast_api_config: { cores: 2, memory: 4, min_replicas: 1, max_replicas: 3, node_capacity_type: 'spot' } },
    })
    expect([200, 201, 409]).toContain(created.status)
    await api('POST', '/api/v1/serve', { name: 'get-config-test-serve', type: 'api', description: 'Test get config', space: 'test-space' })
    const onDemand = await api('POST', `/api/v1/serve/get-config-test-serve/infra-config/${ENV}`, {
      api_serve_config: { backend_type: 'fastapi', fast_api_config: { cores: 4, memory: 8, min_replicas: 2, max_replicas: 10, node_capacity_type: 'on-demand' } },
    })
    expect(onDemand.status).toBe(201)
    const config = (await api('GET', `/api/v1/serve/get-config-test-serve/infra-config/${ENV}`)).body.data
    expect(config.backend_type).toBe('fastapi')
    expect('fast_api_config' in config).toBe(true)
    // Stored and answered in one spelling.
    expect(config.fast_api_config.node_capacity_type).toBe('ondemand')
    expect(config.api_serve_infra_config.node_capacity_type).toBe('ondemand')
  })

  test('deploy a built artifact end to end: 200 or 201, with data.service_url; routed by path without a domain', async () => {
    await api('POST', '/api/v1/serve', { name: 'deploy-artifact-test', type: 'api', description: 'Test deployment', space: 'test-space' })
    const build = await api('POST', '/api/v1/artifact', {
      serve_name: 'deploy-artifact-test',
      version: 'v1.0.0',
      github_repo_url: 'https://github.com/bmaelum/fastapi-hello-world.git',
      branch: 'main',
    })
    expect([200, 201]).toContain(build.status)
    await api('POST', `/api/v1/serve/deploy-artifact-test/infra-config/${ENV}`, {
      api_serve_config: { backend_type: 'fastapi', fast_api_config: { cores: 1, memory: 2, min_replicas: 1, max_replicas: 1, node_capacity_type: 'spot' } },
    })
    // The build completes (the original's test waits for it).
    const poller = createArtifactPoller(artifactDepsFor(ctx), { intervalMs: 0 })
    builder.setState(builder.tasks().at(-1) ?? '', 'completed')
    await poller.tick()
    const deployed = await api('POST', '/api/v1/serve/deploy-artifact-test/deploy', {
      env: ENV,
      artifact_version: 'v1.0.0',
      api_serve_deployment_config: { deployment_strategy: 'rolling', environment_variables: { TEST_VAR: 'test_value' } },
    })
    expect([200, 201]).toContain(deployed.status)
    expect(deployed.headers.get('location')).toBe(`/api/v1/serve/deploy-artifact-test/deployments/${deployed.body.data.revision}`)
    // No domain: reached by path on the cluster's ingress, relative when INGRESS_BASE_URL is not set.
    expect(deployed.body.data.service_url).toBe('/deploy-artifact-test/')
    const ingress = cluster.get('Ingress', 'serve', `deploy-artifact-test-${ENV}`)?.spec as { rules: { host?: string; http: { paths: { path: string }[] } }[] }
    expect(ingress.rules).toHaveLength(1)
    expect(ingress.rules[0]?.host).toBeUndefined()
    expect(ingress.rules[0]?.http.paths[0]?.path).toBe('/deploy-artifact-test')
    const container = (cluster.get('Deployment', 'serve', `deploy-artifact-test-${ENV}`)?.spec as { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } }).template.spec.containers[0]
    expect(container?.env).toContainEqual({ name: 'ROOT_PATH', value: '/deploy-artifact-test' })
  })

  test('a duplicate serve is a conflict', async () => {
    await api('POST', '/api/v1/serve', { name: 'duplicate-test-serve', type: 'api', description: 'Test duplicate', space: 'test-space' })
    const again = await api('POST', '/api/v1/serve', { name: 'duplicate-test-serve', type: 'api', description: 'Test duplicate', space: 'test-space' })
    expect(again.status).toBe(409)
  })
})

describe("the original's infra update flow (test_infra_update_flow.py)", () => {
  const original = (fields: Record<string, unknown>) => ({ api_serve_config: { backend_type: 'fastapi', fast_api_config: fields } })

  test('update a config with nothing deployed: 200, and GET reads the new values from data.fast_api_config', async () => {
    await api('POST', '/api/v1/serve', { name: 'update-config-no-deploy', type: 'api', description: 'Test config update', space: 'test-space' })
    await api('POST', `/api/v1/serve/update-config-no-deploy/infra-config/${ENV}`, original({ cores: 2, memory: 4, min_replicas: 1, max_replicas: 3, node_capacity_type: 'spot' }))
    const updated = await api('PATCH', `/api/v1/serve/update-config-no-deploy/infra-config/${ENV}`, original({ cores: 8, memory: 16, min_replicas: 5, max_replicas: 20, node_capacity_type: 'on-demand' }))
    expect(updated.status).toBe(200)
    const read = await api('GET', `/api/v1/serve/update-config-no-deploy/infra-config/${ENV}`)
    expect(read.status).toBe(200)
    expect(read.body.data.fast_api_config).toMatchObject({ cores: 8, memory: 16, min_replicas: 5, max_replicas: 20 })
  })

  test('update only the replica counts', async () => {
    await api('POST', '/api/v1/serve', { name: 'update-replicas-test', type: 'api', description: 'Test replica update', space: 'test-space' })
    await api('POST', `/api/v1/serve/update-replicas-test/infra-config/${ENV}`, original({ cores: 2, memory: 4, min_replicas: 1, max_replicas: 3, node_capacity_type: 'spot' }))
    const updated = await api('PATCH', `/api/v1/serve/update-replicas-test/infra-config/${ENV}`, original({ cores: 2, memory: 4, min_replicas: 10, max_replicas: 30, node_capacity_type: 'spot' }))
    expect(updated.status).toBe(200)
    const config = (await api('GET', `/api/v1/serve/update-replicas-test/infra-config/${ENV}`)).body.data.fast_api_config
    expect(config).toMatchObject({ min_replicas: 10, max_replicas: 30, cores: 2, memory: 4 })
  })

  test('an update of a deployed serve redeploys it with the new config (the flow the original skips)', async () => {
    const deployed = await api('POST', '/api/v1/serve/deploy-model', oneClickBody('update-redeploy-test'))
    expect([200, 201]).toContain(deployed.status)
    const updated = await api('PATCH', `/api/v1/serve/update-redeploy-test/infra-config/${ENV}`, original({ cores: 2, memory: 2, min_replicas: 1, max_replicas: 1, node_capacity_type: 'spot' }))
    expect(updated.status).toBe(200)
    const config = (await api('GET', `/api/v1/serve/update-redeploy-test/infra-config/${ENV}`)).body.data.fast_api_config
    expect(config).toMatchObject({ cores: 2, memory: 2 })
    const cpu = (cluster.get('Deployment', 'serve', `update-redeploy-test-${ENV}`)?.spec as { template: { spec: { containers: { resources: { requests: { cpu: string } } }[] } } }).template.spec.containers[0]?.resources.requests.cpu
    expect(cpu).toBe('2')
  })
})

describe("the original's one-click flow (test_one_click_flow.py)", () => {
  test('deploy a model with artifact_version: 200 or 201, registered under that version; status answers', async () => {
    const response = await api('POST', '/api/v1/serve/deploy-model', oneClickBody('integration-test-model'))
    expect([200, 201]).toContain(response.status)
    expect(response.body.data.artifact_version).toBe('v1')
    const status = await api('GET', `/api/v1/serve/integration-test-model/status/${ENV}`)
    expect(status.status).toBe(200)
    expect(['READY', 'NOT_READY']).toContain(status.body.data.status)
  })

  test('a deploy to an environment that does not exist: 404 "not found" in message', async () => {
    const response = await api('POST', '/api/v1/serve/deploy-model', { serve_name: 'test-model', artifact_version: 'v1', model_uri: TEST_MODEL_URI, env: 'nonexistent-env', cores: 1, memory: 2 })
    expect(response.status).toBe(404)
    expect(String(response.body.message ?? '').toLowerCase()).toContain('not found')
  })

  test('undeploy a model that was never deployed: 404 (artifact_version accepted)', async () => {
    const response = await api('POST', '/api/v1/serve/undeploy-model', { serve_name: 'nonexistent-model', artifact_version: 'v1', env: ENV })
    expect(response.status).toBe(404)
  })

  test('the health check answers 200, as the original: {"status": "SUCCESS", "message": "OK"}', async () => {
    // The original's test accepts "healthy" or "ok" in status; the original itself answers SUCCESS (ORIGINAL.md).
    const response = await api('GET', '/healthcheck')
    expect(response.status).toBe(200)
    expect(response.body).toEqual({ status: 'SUCCESS', message: 'OK' })
  })

  test('create and read an environment without a domain (inside the envelope: the one deliberate difference)', async () => {
    const created = await api('POST', '/api/v1/environment', {
      name: 'test-list-env',
      environment_configs: { domain_suffix: '', cluster_name: 'kind', namespace: 'serve', security_group: '', ft_redis_url: '', workflow_url: '' },
    })
    expect([200, 201, 409]).toContain(created.status)
    const read = await api('GET', '/api/v1/environment/test-list-env')
    expect(read.status).toBe(200)
    expect(read.body.data.name).toBe('test-list-env')
    expect(read.body.data.environment_configs.cluster_name).toBe('kind')
  })
})
