/**
 * Model-based test of the placement state machine (fast-check `commands` + `asyncModelRun`; the
 * model and the commands are in ./placement-model.ts). Two app instances — each with its own pool and
 * its own workers, as two replicas — on one database, and one fake Kubernetes API shared by both.
 * Each run gets two fresh serves, so runs never reset the database, and begins with them empty or
 * with serve 0 active (a canary of it stepping, or its strategy the canary) — see warmUp.
 *
 * CI runs a fixed seed. Replay or go longer with PLACEMENT_MODEL_SEED, PLACEMENT_MODEL_RUNS,
 * PLACEMENT_MODEL_PATH (the counterexample path a failure prints), PLACEMENT_MODEL_MAX_COMMANDS, or
 * `bun run model -- --runs 300 --seed N` (scripts/placement-model.ts).
 */
import { afterAll, expect, test } from 'bun:test'
import fc from 'fast-check'
import { createApp, createWorkers } from '../../src/app'
import { mysqlDriver } from '../../src/config'
import { connectDatabase } from '../../src/db/client'
import { createTestContext, type TestResponse } from '../support/context'
import { FakeKubernetes } from '../support/fake-kubernetes'
import { environmentBody } from '../support/fixtures'
import { UndocumentedStatusError } from '../support/openapi-contract'
import { commandArbs, ENV, type Model, NS, newServe, quiesce, type Real, type Replica, readmeTable, type ServeModel, type Stats, warmUp, warmUpArb } from './placement-model'

const SEED = Number(process.env.PLACEMENT_MODEL_SEED ?? 20_250_611)
const RUNS = Number(process.env.PLACEMENT_MODEL_RUNS ?? 40)
const MAX_COMMANDS = Number(process.env.PLACEMENT_MODEL_MAX_COMMANDS ?? 24)
const PATH = process.env.PLACEMENT_MODEL_PATH || undefined
const REPLAY = process.env.PLACEMENT_MODEL_REPLAY || undefined

const fake = new FakeKubernetes()
afterAll(() => fake.stop())
// One attempt per cluster request: an injected fault is answered once, and is the request's answer.
// No rate limits: a run sends hundreds of changes a minute with one token.
const settings = {
  ENV: 'prod',
  CLUSTER_REQUEST_ATTEMPTS: '1',
  CLUSTER_REQUEST_TIMEOUT_MS: '5000',
  RATE_LIMIT_PER_TOKEN: '0',
  RATE_LIMIT_PER_IP: '0',
}
const driversOfOneReplica = () => fake.drivers(settings)
const ctx = await createTestContext(settings, { clusterDrivers: driversOfOneReplica() })

// The second replica: its own pool, its own drivers and workers (rollout tracker), the same database.
const databaseB = connectDatabase({ driver: mysqlDriver(), url: ctx.url, poolSize: 5 })
afterAll(() => databaseB.close())
const contextB = { config: ctx.config, database: databaseB, log: ctx.log, clusterDrivers: driversOfOneReplica() }
const workersB = createWorkers(contextB)
const appB = createApp(contextB, workersB)

/** What ctx.request does, against replica B: the admin token, JSON, and the /docs/json status check. */
async function requestB(method: string, path: string, body?: unknown): Promise<TestResponse> {
  const headers: Record<string, string> = { authorization: `Bearer ${ctx.adminToken}` }
  const init: RequestInit = { method, headers }
  if (body !== undefined) {
    init.body = JSON.stringify(body)
    headers['content-type'] = 'application/json'
  }
  const response = await appB.handle(new Request(`http://localhost${path}`, init))
  const text = await response.text()
  let parsed: unknown = text
  try {
    parsed = text === '' ? undefined : JSON.parse(text)
  } catch {}
  const answer = { status: response.status, headers: response.headers, body: parsed as any }
  const problem = await ctx.undocumentedStatus(method, path, answer)
  if (problem) throw new UndocumentedStatusError(problem, answer)
  return answer
}

const replicas: Replica[] = [
  { name: 'A', request: (method, path, body) => ctx.request(method, path, body), tick: () => ctx.deployment.tracker.tick() },
  { name: 'B', request: requestB, tick: () => workersB.deployment.tracker.tick() },
]

expect((await ctx.request('POST', '/api/v1/environment', environmentBody(ENV, { namespace: NS }))).status).toBe(201)
const table = readmeTable(await Bun.file(new URL('../../README.md', import.meta.url)).text())
const INITIAL = { cores: 1, min: 1, max: 3 }
const stats: Stats = { runs: 0, commands: 0, outcomes: {} }

/** A run's fresh serves (two, each with an infra config and the prebuilt artifacts v1 and v2) and the model of them. */
async function newRun(): Promise<{ model: Model; real: Real }> {
  const run = stats.runs++
  ctx.logs.length = 0
  const serves: ServeModel[] = []
  for (const suffix of ['a', 'b']) {
    const name = `r${run.toString(36)}${suffix}`
    const replica = replicas[serves.length % 2] as Replica
    expect((await replica.request('POST', '/api/v1/serve', { name, type: 'api' })).status).toBe(201)
    const infra = { backend_type: 'fastapi', cores: INITIAL.cores, memory: 2, min_replicas: INITIAL.min, max_replicas: INITIAL.max, node_capacity_type: 'spot' }
    expect((await replica.request('POST', `/api/v1/serve/${name}/infra-config/${ENV}`, { api_serve_infra_config: infra })).status).toBe(201)
    for (const version of ['v1', 'v2']) {
      expect((await replica.request('POST', '/api/v1/artifact', { serve_name: name, version, image: `registry.example.com/${name}:${version}` })).status).toBe(201)
    }
    serves.push(newServe(name, INITIAL))
  }
  return { model: { table, serves }, real: { replicas, fake, query: ctx.query, stats, serves: serves.map((s) => s.name) } }
}

// Each run begins empty, with serve 0 active, or with a canary of serve 0 stepping (see warmUp), then runs its commands.
const property = fc.asyncProperty(warmUpArb, fc.commands(commandArbs, { maxCommands: MAX_COMMANDS, size: 'max', ...(REPLAY ? { replayPath: REPLAY } : {}) }), async (begin, commands) => {
  const { model, real } = await newRun()
  await warmUp(model, real, begin)
  await fc.asyncModelRun(() => ({ model, real }), commands)
  await quiesce(model, real)
})

test(
  `placement state machine: ${RUNS} command sequences against two replicas (seed ${SEED})`,
  async () => {
    const started = performance.now()
    const details = await fc.check(property, { seed: SEED, numRuns: RUNS, verbose: fc.VerbosityLevel.Verbose, ...(PATH ? { path: PATH } : {}) })
    const seconds = ((performance.now() - started) / 1000).toFixed(1)
    if (details.failed) {
      // fast-check's commands shrink along the commands that ran: a replay needs their replayPath too.
      const replayPath = /replayPath="([^"]*)"/.exec(String(details.counterexample?.[1] ?? ''))?.[1] ?? ''
      console.error(
        [
          `placement model FAILED — seed ${details.seed}, path ${details.counterexamplePath}, after ${details.numRuns} runs (${seconds} s)`,
          `replay: PLACEMENT_MODEL_SEED=${details.seed} PLACEMENT_MODEL_PATH='${details.counterexamplePath}' PLACEMENT_MODEL_REPLAY='${replayPath}' bun test ./test/model/placement.model.test.ts`,
          fc.defaultReportMessage(details) ?? '',
          `error: ${details.errorInstance instanceof Error ? (details.errorInstance.stack ?? details.errorInstance.message) : String(details.errorInstance)}`,
        ].join('\n'),
      )
      throw new Error(`placement model: counterexample found (seed ${details.seed}, path ${details.counterexamplePath}); see the log above`)
    }
    const outcomes = Object.entries(stats.outcomes)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([outcome, n]) => `  ${outcome}: ${n}`)
    console.log(
      [`placement model: ${details.numRuns} runs, ${stats.commands} commands executed (${stats.runs} serve pairs), ${seconds} s, seed ${details.seed}`, ...outcomes].join('\n'),
    )
  },
  RUNS * 4_000 + 60_000,
)
