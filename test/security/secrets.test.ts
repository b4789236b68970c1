/**
 * Secrets never leak. A workflow that uses every configured secret — a build from GitHub (the
 * GitHub token goes to the Artifact Builder), deploys with MLflow settings (the password goes into a
 * Kubernetes Secret), API tokens created, used and revoked, Idempotency-Key retries — then every
 * response body and header collected, every captured log line, every row of every table (audit log,
 * deployments' rendered manifests, idempotency keys, …) is grepped for each secret value: none.
 * The MLflow password is found in exactly one place: the fake cluster's Secret object. The database
 * password (MYSQL_PASSWORD) is checked apart: redacted, and absent from /readyz and logs when the
 * database is down. 127.0.0.1 only; bounded in time.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { createApp } from '../../src/app'
import { createClusterDrivers } from '../../src/cluster'
import { loadConfig, mysqlDriver } from '../../src/config'
import { connectDatabase, redactUrl, urlFromParts } from '../../src/db/client'
import { openDatabase } from '../../src/db/connect'
import { freePort } from '../../src/db/local-server'
import { createLogger } from '../../src/lib/logger'
import { createTestContext, type TestResponse } from '../support/context'
import { startFakeArtifactBuilder } from '../support/fake-artifact-builder'
import { FakeKubernetes } from '../support/fake-kubernetes'
import { environmentBody } from '../support/fixtures'

const unique = () => crypto.randomUUID().replaceAll('-', '')
const GITHUB_TOKEN = `ghp_${unique()}`
const MLFLOW_PASSWORD = `mlflowpw${unique()}`
const NS = 'ml-serve'

const fake = new FakeKubernetes()
const builder = startFakeArtifactBuilder()
afterAll(() => fake.stop())
const settings = {
  ENV: 'prod',
  CLUSTER_REQUEST_ATTEMPTS: '1',
  CLUSTER_REQUEST_TIMEOUT_MS: '2000',
  ARTIFACT_BUILDER_URL: builder.url,
  ARTIFACT_BUILDER_TIMEOUT_MS: '2000',
  GITHUB_TOKEN,
  CONTAINER_REGISTRY: 'registry.example.com',
  IMAGE_REPOSITORY: 'ml/serves',
  MLFLOW_TRACKING_URI: 'https://mlflow.internal',
  MLFLOW_TRACKING_USERNAME: 'ml',
  MLFLOW_TRACKING_PASSWORD: MLFLOW_PASSWORD,
}
const ctx = await createTestContext(settings, {
  clusterDrivers: fake.drivers(settings),
})

/** Every response of the workflow, but the one that shows a new token once (by design). */
const responses: TestResponse[] = []
const apiTokens: string[] = [ctx.adminToken]
let idempotencyKeys = 0
async function call(expected: number, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const withKey = method === 'POST' ? { 'idempotency-key': `secrets-${idempotencyKeys++}`, ...headers } : headers
  const response = await ctx.request(method, path, body, withKey)
  responses.push(response)
  if (response.status !== expected) throw new Error(`${method} ${path}: expected ${expected}, got ${response.status} ${JSON.stringify(response.body)}`)
  return response
}
function completeRollout(name: string) {
  const generation = Number(fake.get('Deployment', NS, name)?.metadata.generation ?? 1)
  fake.setStatus('Deployment', NS, name, { observedGeneration: generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 })
}

describe('a workflow touching every secret', () => {
  test('tokens are created, used and revoked', async () => {
    for (const scopes of [['read', 'write', 'deploy'], ['read']]) {
      // The creation response is the one place a token is shown: kept out of `responses`.
      const created = await ctx.request('POST', '/api/v1/tokens', { name: `secrets-${scopes.length}`, scopes }, { 'idempotency-key': `token-${scopes.length}` })
      expect(created.status).toBe(201)
      apiTokens.push(created.body.data.token)
    }
    const [, deployer = '', reader = ''] = apiTokens
    await call(201, 'POST', '/api/v1/environment', environmentBody('prod', { namespace: NS }), { authorization: `Bearer ${deployer}` })
    await call(403, 'POST', '/api/v1/serve', { name: 'nope', type: 'api' }, { authorization: `Bearer ${reader}` })
    await call(200, 'GET', '/api/v1/tokens')
    const readerId = (await ctx.query<{ id: number }>("select id from api_tokens where name = 'secrets-1'"))[0]?.id
    await call(200, 'DELETE', `/api/v1/tokens/${readerId}`)
    await call(401, 'GET', '/api/v1/serve', undefined, { authorization: `Bearer ${reader}` })
  })

  test('an artifact is built from GitHub: the token goes to the builder', async () => {
    await call(201, 'POST', '/api/v1/serve', { name: 'fraud', type: 'api' })
    const body = { serve_name: 'fraud', version: 'v1', github_repo_url: 'https://github.com/myorg/fraud', branch: 'main' }
    await call(201, 'POST', '/api/v1/artifact', body, { 'idempotency-key': 'build-v1' })
    // A retry with the same key answers the first response without a second build.
    await call(201, 'POST', '/api/v1/artifact', body, { 'idempotency-key': 'build-v1' })
    const starts = builder.requests.filter((r) => r.path === '/build_with_dockerfile')
    expect(starts).toHaveLength(1)
    expect((starts[0]?.body as { github_token?: string }).github_token).toBe(GITHUB_TOKEN)
    await call(200, 'GET', '/api/v1/serve/fraud/artifact/v1')
    await call(200, 'GET', '/api/v1/artifact_builder_job')
  })

  test('deploys with MLflow settings: the password is written into a Secret the Deployment references', async () => {
    await call(201, 'POST', '/api/v1/serve/fraud/infra-config/prod', {
      api_serve_infra_config: { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 2, node_capacity_type: 'spot' },
    })
    await call(201, 'POST', '/api/v1/artifact', { serve_name: 'fraud', version: 'v2', image: 'registry.example.com/ml/serves:fraud_v2' })
    await call(201, 'POST', '/api/v1/serve/fraud/deploy', { env: 'prod', artifact_version: 'v2' })
    completeRollout('fraud-prod')
    await ctx.deployment.tracker.tick()
    await call(201, 'POST', '/api/v1/serve/fraud/deploy', { env: 'prod', artifact_version: 'v2', api_serve_deployment_config: { environment_variables: { RUN: '2' } } })
    completeRollout('fraud-prod')
    await ctx.deployment.tracker.tick()
    await call(201, 'POST', '/api/v1/serve/fraud/rollback', { env: 'prod' })
    await call(200, 'POST', '/api/v1/serve/fraud/deploy', { env: 'prod', artifact_version: 'v2', dry_run: true })
    await call(200, 'GET', '/api/v1/serve/fraud/deployments/1')
    await call(200, 'GET', '/api/v1/serve/fraud/deployment/prod')
    await call(200, 'GET', '/api/v1/serve/fraud/manifests/prod?artifact_version=v2')
    await call(200, 'GET', '/api/v1/serve/fraud/manifests/prod?artifact_version=v2', undefined, { accept: 'application/yaml' })
    await call(200, 'GET', '/api/v1/audit?limit=100')
    const deployment = JSON.stringify(fake.get('Deployment', NS, 'fraud-prod'))
    expect(deployment).toContain('"secretKeyRef"')
    expect(deployment).toContain('fraud-prod-mlflow')
  })
})

describe('no secret anywhere', () => {
  test('the MLflow password is in the cluster Secret, and in no other object on the cluster', () => {
    const secret = fake.get('Secret', NS, 'fraud-prod-mlflow') as { stringData?: Record<string, string>; data?: Record<string, string> } | undefined
    const values = [...Object.values(secret?.stringData ?? {}), ...Object.values(secret?.data ?? {}).map((v) => Buffer.from(v, 'base64').toString())]
    expect(values).toContain(MLFLOW_PASSWORD)
    const elsewhere = fake.list().filter((o) => !(o.kind === 'Secret' && o.metadata.name === 'fraud-prod-mlflow') && JSON.stringify(o).includes(MLFLOW_PASSWORD))
    expect(elsewhere.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([])
    // …and the only requests that carried it were the applies of that Secret.
    const carriers = fake.requests.filter((r) => JSON.stringify(r.body ?? '').includes(MLFLOW_PASSWORD)).map((r) => `${r.method} ${r.path}`)
    expect(carriers.length).toBeGreaterThan(0)
    expect(carriers.every((c) => c === `PATCH /api/v1/namespaces/${NS}/secrets/fraud-prod-mlflow`)).toBe(true)
  })

  test('responses, log lines and every database table hold none of the secret values', async () => {
    const secrets: Record<string, string> = { GITHUB_TOKEN, MLFLOW_TRACKING_PASSWORD: MLFLOW_PASSWORD }
    apiTokens.forEach((token, i) => {
      secrets[`api token ${i}`] = token
    })
    const places: Record<string, string[]> = {
      responses: responses.map((r) => `${r.status} ${JSON.stringify([...r.headers])} ${typeof r.body === 'string' ? r.body : JSON.stringify(r.body)}`),
      logs: ctx.logs,
    }
    const tables = await ctx.query<{ name: string }>("select table_name as name from information_schema.tables where table_schema = database()")
    let rows = 0
    for (const { name } of tables) {
      const content = await ctx.query(`select * from \`${name}\``)
      rows += content.length
      places[`table ${name}`] = content.map((row) => JSON.stringify(row))
    }
    const leaks: string[] = []
    for (const [place, texts] of Object.entries(places)) {
      for (const text of texts) {
        for (const [secret, value] of Object.entries(secrets)) if (text.includes(value)) leaks.push(`${secret} in ${place}: ${text.slice(0, 200)}`)
      }
    }
    // The workflow did write what is being searched.
    expect((await ctx.query('select id from idempotency_keys')).length).toBeGreaterThan(5)
    expect((await ctx.query("select id from audit_log where outcome = 'success'")).length).toBeGreaterThan(8)
    expect((await ctx.query('select id from deployments')).length).toBe(3)
    expect(ctx.logs.length).toBeGreaterThan(10)
    console.log(
      `secrets: ${Object.keys(secrets).length} secret values (GitHub token, MLflow password, ${apiTokens.length} API tokens) searched in ${responses.length} responses, ${ctx.logs.length} log lines, ${rows} rows of ${tables.length} tables: ${leaks.length} found`,
    )
    expect(leaks).toEqual([])
  })
})

describe('the database password', () => {
  const MYSQL_PASSWORD = `dbpw${unique()}`

  test('is redacted from the URL built from MYSQL_* settings', () => {
    const config = loadConfig({ ENV: 'prod', MYSQL_HOST: 'db.internal', MYSQL_PASSWORD, MYSQL_USERNAME: 'serve' })
    const url = urlFromParts(config.database)
    expect(url).toContain(MYSQL_PASSWORD)
    expect(redactUrl(url)).not.toContain(MYSQL_PASSWORD)
    expect(redactUrl(url)).toContain('serve:***@db.internal')
  })

  test('never appears in /readyz, API errors, start-up errors or logs when the database is unreachable', async () => {
    const port = await freePort()
    const config = loadConfig({ ENV: 'prod', MYSQL_HOST: '127.0.0.1', MYSQL_PORT: String(port), MYSQL_USERNAME: 'serve', MYSQL_PASSWORD, ENABLE_OTEL: 'false' })
    const logs: string[] = []
    const log = createLogger({ level: 'debug', write: (line) => logs.push(line) })
    const texts: string[] = []
    const opening = await openDatabase(config, log, { allowLocal: false }).then(
      () => 'opened',
      (error: unknown) => (error instanceof Error ? `${error.message} ${error.stack ?? ''}` : String(error)),
    )
    texts.push(opening)
    const database = connectDatabase({ driver: mysqlDriver(), url: urlFromParts(config.database), poolSize: 1 })
    try {
      const app = createApp({ config, database, log, clusterDrivers: createClusterDrivers(config) })
      const ready = await app.handle(new Request('http://localhost/readyz'))
      expect(ready.status).toBe(503)
      texts.push(await ready.text())
      const api = await app.handle(new Request('http://localhost/api/v1/environment', { headers: { authorization: `Bearer ${ctx.adminToken}` } }))
      expect(api.status).toBe(503)
      texts.push(await api.text())
    } finally {
      await database.close()
    }
    const found = [...texts, ...logs].filter((text) => text.includes(MYSQL_PASSWORD))
    console.log(`database password: ${texts.length} error answers and ${logs.length} log lines while the database is unreachable, ${found.length} containing it`)
    expect(found).toEqual([])
    expect(logs.length).toBeGreaterThan(0)
  })
})
