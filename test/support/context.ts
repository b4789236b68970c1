/**
 * A fresh database per test file on the server found by preload.ts, migrated, with an app built on it
 * and every log line captured (so tests can assert that nothing secret was logged).
 */
import { afterAll } from 'bun:test'
import mysql from 'mysql2/promise'
import { createApp, createWorkers } from '../../src/app'
import type { DeploymentRuntime } from '../../src/modules/deployment'
import { type ClusterDrivers, createClusterDrivers } from '../../src/cluster'
import { type Config, loadConfig, mysqlDriver } from '../../src/config'
import { connectDatabase, type Database } from '../../src/db/client'
import { ensureDatabaseExists, runMigrations } from '../../src/db/migrate'
import type { TokenScope } from '../../src/db/schema'
import { createLogger, type Logger } from '../../src/lib/logger'
import { ensureBootstrapAdmin } from '../../src/modules/token/service'
import { type Answer, OpenApiContract, type OpenApiSpec, UndocumentedStatusError } from './openapi-contract'

export interface TestContext {
  config: Config
  database: Database
  clusterDrivers: ClusterDrivers
  /** The deployment module's runtime: tests tick its rollout tracker themselves. */
  deployment: DeploymentRuntime
  url: string
  app: ReturnType<typeof createApp>
  logs: string[]
  /** The app's logger (writes into `logs`), for services and workers a test runs beside the app. */
  log: Logger
  /** A raw connection to the test database, to check rows without going through the app. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>
  /** The admin token every `request` sends unless its headers name another `authorization` ('' for none). */
  adminToken: string
  /** Creates a token with these scopes (through the API) and returns its value. */
  createToken(scopes: TokenScope[], name?: string): Promise<string>
  /**
   * Calls the app like an HTTP client would; a JSON body is serialised. Throws an
   * UndocumentedStatusError when the answer's status is not one /docs/json lists for the operation
   * (test/support/openapi-contract.ts): every test is also a check of the docs.
   */
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse>
  /** `request` without the /docs/json check, for tests that collect violations themselves. */
  requestUnchecked(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse>
  /** Why an answer breaks /docs/json (its status is not listed for the operation), or undefined. */
  undocumentedStatus(method: string, path: string, answer: Answer): Promise<string | undefined>
  /** /docs/json of this app, as a contract (fetched once). */
  contract(): Promise<OpenApiContract>
}

export interface TestResponse {
  status: number
  headers: Headers
  body: any
}

let counter = 0

export async function createTestContext(
  env: Record<string, string> = {},
  overrides: { clusterDrivers?: ClusterDrivers } = {},
): Promise<TestContext> {
  const serverUrl = process.env.TEST_DATABASE_SERVER_URL
  if (!serverUrl) throw new Error('TEST_DATABASE_SERVER_URL is not set: run tests with `bun test` (bunfig.toml preloads the server)')
  const name = `t_${Date.now().toString(36)}_${process.pid}_${counter++}_${Math.random().toString(36).slice(2, 8)}`
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  await ensureDatabaseExists(url.toString())
  const config = loadConfig({ ENV: 'test', ENABLE_OTEL: 'false', DATABASE_URL: url.toString(), ...env })
  const database = connectDatabase({ driver: mysqlDriver(), url: url.toString(), poolSize: 5 })
  await runMigrations(database)
  const adminToken = `test-admin-token-${crypto.randomUUID()}`
  await ensureBootstrapAdmin(database.db, 'admin', adminToken)
  const logs: string[] = []
  const log = createLogger({ level: 'debug', write: (line) => logs.push(line) })
  const clusterDrivers = overrides.clusterDrivers ?? createClusterDrivers(config)
  const workers = createWorkers({ config, database, log, clusterDrivers })
  const { deployment } = workers
  const app = createApp({ config, database, log, clusterDrivers }, workers)
  const raw = await mysql.createConnection({ uri: url.toString(), timezone: 'Z' })
  let contractOnce: Promise<OpenApiContract> | undefined
  const contract = () =>
    (contractOnce ??= app
      .handle(new Request('http://localhost/docs/json'))
      .then((response) => response.json() as Promise<OpenApiSpec>)
      .then((spec) => new OpenApiContract(spec)))
  const undocumentedStatus = async (method: string, path: string, answer: Answer) => (await contract()).violation(method, path, answer)

  afterAll(async () => {
    await raw.query(`DROP DATABASE IF EXISTS \`${name}\``)
    await raw.end()
    await database.close()
  })

  return {
    config,
    database,
    clusterDrivers,
    deployment,
    url: url.toString(),
    app,
    logs,
    log,
    query: async (sql, params) => {
      const [rows] = await raw.query(sql, params)
      return rows as never
    },
    adminToken,
    createToken: async (scopes, name = `token-${crypto.randomUUID().slice(0, 8)}`) => {
      const response = await request('POST', '/api/v1/tokens', { name, scopes })
      if (response.status !== 201) throw new Error(`creating a token failed: ${JSON.stringify(response.body)}`)
      return response.body.data.token as string
    },
    request: async (method, path, body, headers) => {
      const response = await request(method, path, body, headers)
      const problem =
        (await undocumentedStatus(method, path, response)) ??
        (await contract()).nonconformance(method, path, { ...response, contentType: response.headers.get('content-type') })
      if (problem) throw new UndocumentedStatusError(problem, response)
      return response
    },
    requestUnchecked: (method, path, body, headers) => request(method, path, body, headers),
    undocumentedStatus,
    contract,
  }

  async function request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<TestResponse> {
    const withAuth: Record<string, string> = { authorization: `Bearer ${adminToken}`, ...headers }
    if (withAuth.authorization === '') delete withAuth.authorization
    const init: RequestInit = { method, headers: withAuth }
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body)
      withAuth['content-type'] ??= 'application/json'
    }
    const response = await app.handle(new Request(`http://localhost${path}`, init))
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = text === '' ? undefined : JSON.parse(text)
    } catch {}
    return { status: response.status, headers: response.headers, body: parsed }
  }
}
