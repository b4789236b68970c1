/**
 * /docs/json checked with tools we did not write, as a client developer would: Redocly's
 * `recommended` rules and Spectral's `spectral:oas` ruleset find no error; openapi-typescript
 * generates types from it under which test/contract/client/workflow.ts (openapi-fetch, no casts)
 * typechecks strictly, and that program then walks the main workflow against the app. Every answer
 * of the API suite is also validated against the document (test/support/openapi-contract.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createTestContext } from '../support/context'
import { FakeKubernetes } from '../support/fake-kubernetes'

const root = resolve(import.meta.dir, '../..')
const bin = (name: string) => join(root, 'node_modules/.bin', name)
const fake = new FakeKubernetes()
const settings = { ENV: 'prod', ROLLOUT_POLL_INTERVAL_MS: '50', CLUSTER_REQUEST_ATTEMPTS: '1' }
const ctx = await createTestContext(settings, { clusterDrivers: fake.drivers(settings) })
const dir = mkdtempSync(join(tmpdir(), 'darwin-ml-serve-contract-'))
const documentPath = join(dir, 'openapi.json')
let document: { paths: Record<string, Record<string, { operationId?: string }>> }

beforeAll(async () => {
  const response = await ctx.app.handle(new Request('http://localhost/docs/json'))
  document = (await response.json()) as typeof document
  writeFileSync(documentPath, JSON.stringify(document, null, 2))
})
afterAll(() => {
  fake.stop()
  rmSync(dir, { recursive: true, force: true })
})

type RunWorkflow = (baseUrl: string, token: string, fetchImpl: (request: Request) => Promise<Response>, onDeployed: () => Promise<void>) => Promise<unknown>

function run(command: string[]) {
  const result = Bun.spawnSync(command, { cwd: dir, stdout: 'pipe', stderr: 'pipe', env: { ...process.env, NO_COLOR: '1', REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } })
  return { exitCode: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() }
}

describe('/docs/json lints clean', () => {
  test("Redocly's recommended rules: no error", () => {
    const result = run([bin('redocly'), 'lint', '--extends', 'recommended', '--format', 'json', documentPath])
    const report = JSON.parse(result.stdout) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; severity: string; message: string }[] }
    const errors = report.problems.filter((problem) => problem.severity === 'error')
    expect(errors.map((problem) => `${problem.ruleId}: ${problem.message}`)).toEqual([])
    expect(report.totals.errors).toBe(0)
  }, 60_000)

  test("Spectral's spectral:oas ruleset: no error", () => {
    const result = run([bin('spectral'), 'lint', documentPath, '--ruleset', join(import.meta.dir, '.spectral.yaml'), '--format', 'json', '--quiet'])
    const results = JSON.parse(result.stdout || '[]') as { code: string; severity: number; message: string; path: string[] }[]
    const errors = results.filter((each) => each.severity === 0)
    expect(errors.map((each) => `${each.code}: ${each.message} at ${each.path.join('/')}`)).toEqual([])
  }, 60_000)

  test('every operation has a stable, human operation id', () => {
    const ids = Object.values(document.paths).flatMap((item) => Object.values(item).map((operation) => operation.operationId))
    expect(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id))).toBe(true)
    expect(new Set(ids).size).toBe(ids.length)
    // Pinned: a generated client's method names; renaming one breaks every client generated before.
    expect(ids.sort()).toEqual([
      'abortCanary', 'createArtifact', 'createEnvironment', 'createInfraConfig', 'createServe', 'createToken', 'deleteEnvironment', 'deleteScalingSchedule',
      'deleteServe', 'deployModel', 'deployServe', 'getArtifact', 'getBuildJobStatus', 'getDeployment', 'getEnvironment', 'getInfraConfig',
      'getRevision', 'getScalingSchedule', 'getServe', 'getServeStatus', 'health', 'healthcheck', 'listArtifacts', 'listAuditRecords',
      'listBuildJobs', 'listDeployments', 'listEnvironments', 'listInfraConfigs', 'listScalingEvents', 'listServeArtifacts', 'listServes',
      'listTokens', 'previewManifests', 'previewScalingSchedule', 'promoteCanary', 'putScalingSchedule', 'readiness', 'revokeToken', 'rollbackServe',
      'runScalingTick', 'undeployModel', 'undeployServe', 'undeployServeFromEnvironment', 'updateEnvironment', 'updateInfraConfig', 'updateServe',
    ])
  })
})

describe('a client generated from /docs/json', () => {
  test('openapi-typescript types: the workflow program typechecks (strict, no casts) and walks the workflow against the app', async () => {
    const generated = run([bin('openapi-typescript'), documentPath, '--output', join(dir, 'api.d.ts')])
    expect(generated.exitCode).toBe(0)
    copyFileSync(join(import.meta.dir, 'client/workflow.ts'), join(dir, 'workflow.ts'))
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ESNext', module: 'ESNext', moduleResolution: 'bundler', lib: ['ESNext', 'DOM'], strict: true, noUncheckedIndexedAccess: true, noEmit: true, skipLibCheck: true, types: [] },
        files: ['workflow.ts'],
      }),
    )
    const typecheck = run([bin('tsc'), '-p', join(dir, 'tsconfig.json')])
    expect(typecheck.stdout + typecheck.stderr).toBe('')
    expect(typecheck.exitCode).toBe(0)

    // The copy beside the generated types (a path the root typecheck does not follow: ./api exists only here).
    const { runWorkflow }: { runWorkflow: RunWorkflow } = await import(join(dir, 'workflow.ts'))
    const outcome = await runWorkflow('http://localhost', ctx.adminToken, (request) => ctx.app.handle(request), async () => {
      // Objects are named {serve}-{env} (the env is not the service's own ENV).
      const generation = Number(fake.get('Deployment', 'ml-serve', 'client-serve-client-env')?.metadata.generation ?? 1)
      fake.setStatus('Deployment', 'ml-serve', 'client-serve-client-env', { observedGeneration: generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 })
      await ctx.deployment.tracker.tick()
    })
    expect(outcome).toEqual({
      revision: 1,
      status: 'active',
      location: '/api/v1/serve/client-serve/deployments/1',
      historyTotal: 1,
      maxReplicas: 3,
      manifestKinds: expect.arrayContaining(['Deployment', 'Service', 'HorizontalPodAutoscaler']),
      undeployed: expect.any(String),
    })
  }, 120_000)
})
