/**
 * The CLI (src/cli) against the app, a fake Kubernetes API and a fake Artifact Builder, as a pipeline
 * runs it: each subcommand's happy path, what it prints, the exit codes of failures (1), bad usage
 * (2), a `--wait` that runs out (3), a conflict (4) and an unreachable service (5), and the progress
 * lines of `--wait` in a CI log.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { type CliIO, runCli } from '../../src/cli'
import { EXIT } from '../../src/cli/exit'
import { createTestContext } from '../support/context'
import { startFakeArtifactBuilder } from '../support/fake-artifact-builder'
import { FakeKubernetes } from '../support/fake-kubernetes'
import { environmentConfigs } from '../support/fixtures'

const fake = new FakeKubernetes()
const builder = startFakeArtifactBuilder()
afterAll(() => fake.stop())
const settings = { ENV: 'prod', ROLLOUT_POLL_INTERVAL_MS: '50', CLUSTER_REQUEST_ATTEMPTS: '1', ARTIFACT_BUILDER_URL: builder.url, ARTIFACT_BUILDER_TIMEOUT_MS: '1000' }
const ctx = await createTestContext(settings, { clusterDrivers: fake.drivers(settings) })
const NS = 'ml-serve'

const files: Record<string, string> = {
  'env.yaml': `name: prod\nenvironment_configs:\n${Object.entries(environmentConfigs).map(([key, value]) => `  ${key}: "${value}"`).join('\n')}\n`,
  'env-changed.json': JSON.stringify({ name: 'prod', environment_configs: { domain_suffix: '.changed.example.com' } }),
  'serve.yaml': 'name: fraud\ntype: api\ndescription: Fraud scoring\nspace: risk\n',
  'serve-changed.yaml': 'name: fraud\ntype: api\ndescription: Fraud scoring v2\n',
  'infra.yaml': 'api_serve_infra_config:\n  backend_type: fastapi\n  cores: 1\n  memory: 2\n  min_replicas: 2\n  max_replicas: 4\n  node_capacity_type: spot\n',
  'infra-changed.yaml': 'api_serve_infra_config:\n  max_replicas: 6\n',
  'schedule.yaml': 'timezone: Europe/Berlin\nwindows:\n  - name: business-hours\n    start: "0 8 * * 1-5"\n    end: "0 18 * * 1-5"\n    min_replicas: 3\n    max_replicas: 4\n',
  'list.yaml': '- a\n- b\n',
}

interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Runs the CLI in process against the app; `env` adds to the default URL and token. */
async function cli(args: string[], options: { env?: Record<string, string | undefined>; isTTY?: boolean } = {}): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const io: CliIO = {
    stdout: (text) => {
      stdout += `${text}\n`
    },
    stderr: (text) => {
      stderr += text
    },
    env: { DARWIN_ML_SERVE_URL: 'http://localhost', DARWIN_ML_SERVE_TOKEN: ctx.adminToken, ...options.env },
    isTTY: options.isTTY ?? false,
    readFile: async (path) => {
      const text = files[path]
      if (text === undefined) throw new Error(`ENOENT: no such file ${path}`)
      return text
    },
    fetch: (request) => ctx.app.handle(request),
    pollIntervalMs: 20,
  }
  const code = await runCli(args, io)
  return { code, stdout, stderr }
}

/** Completes the rollout of `serve` as a Deployment controller would, until stopped. */
function completeRollouts(serve: string, replicas = 2) {
  const name = `${serve}-prod`
  const timer = setInterval(async () => {
    const object = fake.get('Deployment', NS, name)
    if (!object) return
    fake.setStatus('Deployment', NS, name, { observedGeneration: Number(object.metadata.generation ?? 1), replicas, updatedReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas })
    await ctx.deployment.tracker.tick()
  }, 30)
  return { stop: () => clearInterval(timer) }
}

const json = (run: Run) => JSON.parse(run.stdout)

describe('cli — setting up from files (apply -f creates or updates)', () => {
  test('env apply creates, then merges the configs; env get prints it', async () => {
    const created = await cli(['env', 'apply', '-f', 'env.yaml', '-o', 'json'])
    expect(created).toMatchObject({ code: EXIT.ok })
    expect(json(created)).toMatchObject({ name: 'prod', environment_configs: { namespace: NS } })
    const updated = await cli(['env', 'apply', '-f', 'env-changed.json', '-o', 'json'])
    expect(updated.code).toBe(EXIT.ok)
    expect(json(updated).environment_configs).toMatchObject({ domain_suffix: '.changed.example.com', namespace: NS })
    const shown = await cli(['env', 'get', 'prod'])
    expect(shown.code).toBe(EXIT.ok)
    expect(shown.stdout).toMatch(/^name:\s+prod$/m)
  })

  test('serve apply creates, then updates the description; infra apply creates, then patches', async () => {
    expect((await cli(['serve', 'apply', '-f', 'serve.yaml'])).code).toBe(EXIT.ok)
    const updated = await cli(['serve', 'apply', '-f', 'serve-changed.yaml', '-o', 'yaml'])
    expect(updated.code).toBe(EXIT.ok)
    expect(updated.stdout).toContain('description: Fraud scoring v2')
    expect((await cli(['infra', 'apply', 'fraud', '--env', 'prod', '-f', 'infra.yaml'])).code).toBe(EXIT.ok)
    const patched = await cli(['infra', 'apply', 'fraud', '--env', 'prod', '-f', 'infra-changed.yaml', '-o', 'json'])
    expect(patched.code).toBe(EXIT.ok)
    expect(json(patched).api_serve_infra_config).toMatchObject({ min_replicas: 2, max_replicas: 6 })
    const [row] = await ctx.query<{ max_replicas: number }>('select i.max_replicas from infra_configs i join serves s on s.id = i.serve_id where s.name = ?', ['fraud'])
    expect(row?.max_replicas).toBe(6)
  })

  test('artifact register; artifact build --wait follows the build to its end', async () => {
    const registered = await cli(['artifact', 'register', 'fraud', '--version', 'v1', '--image', 'registry.example.com/fraud:v1', '-o', 'json'])
    expect(registered.code).toBe(EXIT.ok)
    expect(json(registered)).toMatchObject({ version: 'v1', status: 'succeeded', source: 'prebuilt' })
    expect((await cli(['artifact', 'register', 'fraud', '--version', 'v2', '--image', 'registry.example.com/fraud:v2'])).code).toBe(EXIT.ok)

    const finishing = setInterval(() => {
      for (const task of builder.tasks()) builder.setState(task, 'completed')
    }, 50)
    const built = await cli(['artifact', 'build', 'fraud', '--version', 'v3', '--repo', 'https://github.com/myorg/fraud', '--wait', '-o', 'json'])
    clearInterval(finishing)
    expect(built.stderr).toContain('artifact v3 of fraud: queued')
    expect(built.code).toBe(EXIT.ok)
    expect(json(built)).toMatchObject({ version: 'v3', status: 'succeeded' })
  })

  test('a build that fails: exit 1 with its reason', async () => {
    const failing = setInterval(() => {
      for (const task of builder.tasks()) builder.setState(task, 'failed', 'pip install failed')
    }, 50)
    const built = await cli(['artifact', 'build', 'fraud', '--version', 'v4', '--wait=30'])
    clearInterval(failing)
    expect(built.code).toBe(EXIT.failed)
    expect(built.stderr).toContain('artifact v4 failed')
    expect(built.stderr).toContain('pip install failed')
  })
})

describe('cli — deploy and follow', () => {
  test('deploy --wait shows the rollout in plain lines and exits 0 once active', async () => {
    const controller = completeRollouts('fraud')
    const run = await cli(['deploy', 'fraud', '--env', 'prod', '--artifact', 'v1', '--set', 'MODEL_PATH=/models/a', '--wait', '-o', 'json'])
    controller.stop()
    expect(run.code).toBe(EXIT.ok)
    expect(json(run)).toMatchObject({ revision: 1, status: 'active' })
    const lines = run.stderr.trim().split('\n')
    expect(lines[0]).toBe('revision 1 of fraud in prod: deploying')
    expect(lines.at(-1)).toBe('revision 1: active')
    // In a log: one line per change, never a carriage return.
    expect(run.stderr).not.toContain('\r')
    const deployment = fake.get('Deployment', NS, 'fraud-prod') as unknown as { spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } } }
    expect(deployment.spec.template.spec.containers[0]?.env).toContainEqual({ name: 'MODEL_PATH', value: '/models/a' })
  })

  test('on a terminal, progress rewrites one line', async () => {
    const controller = completeRollouts('fraud')
    const run = await cli(['deploy', 'fraud', '--env', 'prod', '--artifact', 'v2', '--wait=60'], { isTTY: true })
    controller.stop()
    expect(run.code).toBe(EXIT.ok)
    expect(run.stderr).toContain('\r\x1b[2Krevision 2: active')
    expect(run.stdout).toMatch(/^status:\s+active$/m)
  })

  test('status, history (a table) and manifests (YAML for kubectl)', async () => {
    const status = await cli(['status', 'fraud', '--env', 'prod', '-o', 'json'])
    expect(status.code).toBe(EXIT.ok)
    expect(json(status)).toMatchObject({ serve_name: 'fraud', env: 'prod', active: { revision: 2 } })
    const history = await cli(['history', 'fraud', '--env', 'prod'])
    expect(history.code).toBe(EXIT.ok)
    const [header, ...rows] = history.stdout.trim().split('\n')
    expect(header).toMatch(/^REVISION\s+SERVE_NAME\s+ENV\s+STATUS/)
    expect(rows.map((row) => row.split(/\s+/).slice(0, 4).join(' '))).toEqual(['2 fraud prod active', '1 fraud prod superseded'])
    const manifests = await cli(['manifests', 'fraud', '--env', 'prod', '--artifact', 'v2'])
    expect(manifests.code).toBe(EXIT.ok)
    expect(manifests.stdout).toContain('kind: Deployment')
    expect(manifests.stdout).toContain('image: registry.example.com/fraud:v2')
  })

  test('a rollout that fails: exit 1 with the reason', async () => {
    const failing = setInterval(async () => {
      const object = fake.get('Deployment', NS, 'fraud-prod')
      // Only v1's rollout fails: the automatic rollback to v2 is left to roll out.
      const image = (object?.spec as { template: { spec: { containers: { image: string }[] } } } | undefined)?.template.spec.containers[0]?.image
      if (!object || image !== 'registry.example.com/fraud:v1') return
      fake.setStatus('Deployment', NS, 'fraud-prod', {
        observedGeneration: Number(object.metadata.generation ?? 1),
        replicas: 2,
        updatedReplicas: 1,
        availableReplicas: 1,
        conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'ReplicaSet has timed out progressing.' }],
      })
      await ctx.deployment.tracker.tick()
    }, 30)
    const run = await cli(['deploy', 'fraud', '--env', 'prod', '--artifact', 'v1', '--wait=60'])
    clearInterval(failing)
    expect(run.code).toBe(EXIT.failed)
    expect(run.stderr).toMatch(/error: revision 3 failed: .*ProgressDeadlineExceeded.*; rolled back automatically: revision 4 serves in its place/)
    // The automatic rollback rolls out like any revision.
    const controller = completeRollouts('fraud')
    for (let i = 0; i < 100 && json(await cli(['status', 'fraud', '--env', 'prod', '-o', 'json'])).in_flight !== null; i++) await Bun.sleep(20)
    controller.stop()
    expect(json(await cli(['status', 'fraud', '--env', 'prod', '-o', 'json'])).active).toMatchObject({ revision: 4, reason: 'auto-rollback', rolled_back_from: 2 })
  })

  test('--wait that runs out: exit 3, the rollout goes on; a deploy meanwhile: exit 4 (409)', async () => {
    const run = await cli(['deploy', 'fraud', '--env', 'prod', '--artifact', 'v2', '--wait=1'])
    expect(run.code).toBe(EXIT.timeout)
    expect(run.stderr).toContain('revision 5 is still deploying after 1 s; it goes on: darwin-ml-serve status fraud --env prod')
    const conflict = await cli(['deploy', 'fraud', '--env', 'prod', '--artifact', 'v1'])
    expect(conflict.code).toBe(EXIT.conflict)
    expect(conflict.stderr).toContain('CHANGE_IN_PROGRESS')
    const controller = completeRollouts('fraud')
    const settled = await cli(['status', 'fraud', '--env', 'prod', '-o', 'json'])
    await Bun.sleep(200)
    controller.stop()
    expect(settled.code).toBe(EXIT.ok)
  })

  test('deploy --strategy canary --wait shows each step until active; promote and abort', async () => {
    const cluster = setInterval(async () => {
      if (fake.get('Deployment', NS, 'fraud-prod-canary')) fake.runPods(NS, 'fraud-prod-canary')
      if (fake.get('Deployment', NS, 'fraud-prod')) fake.runPods(NS, 'fraud-prod', { count: 2 })
      await ctx.deployment.tracker.tick()
    }, 30)
    const run = await cli(['deploy', 'fraud', '--env', 'prod', '--artifact', 'v1', '--strategy', 'canary', '--steps', '50,100', '--step-seconds', '1', '--wait=60'])
    clearInterval(cluster)
    expect(run.code).toBe(EXIT.ok)
    expect(run.stderr).toMatch(/revision 6: deploying, canary step 1\/2 at 50 %, 2\/2 ready/)
    expect(run.stderr.trim().split('\n').at(-1)).toBe('revision 6: active')

    // Left out, the steps would be the active revision's (50,100), like every deployment setting.
    expect((await cli(['deploy', 'fraud', '--env', 'prod', '--artifact', 'v2', '--strategy', 'canary', '--steps', '10,50,100', '--step-seconds', '3600'])).code).toBe(EXIT.ok)
    const promoted = await cli(['promote', 'fraud', '--env', 'prod', '-o', 'json'])
    expect(promoted.code).toBe(EXIT.ok)
    expect(json(promoted).canary).toMatchObject({ step: 2, weight: 50 })
    const aborted = await cli(['abort', 'fraud', '--env', 'prod', '-o', 'json'])
    expect(aborted.code).toBe(EXIT.ok)
    expect(json(aborted)).toMatchObject({ canary: null, active: { revision: 6 } })
    const none = await cli(['abort', 'fraud', '--env', 'prod'])
    expect(none.code).toBe(EXIT.conflict)
    expect(none.stderr).toContain('NO_CANARY')
  })

  test('rollback --wait, then undeploy', async () => {
    const controller = completeRollouts('fraud')
    const rolledBack = await cli(['rollback', 'fraud', '--env', 'prod', '--revision', '1', '--wait=60', '-o', 'json'])
    controller.stop()
    expect(rolledBack.code).toBe(EXIT.ok)
    expect(json(rolledBack)).toMatchObject({ status: 'active' })
    const undeployed = await cli(['undeploy', 'fraud', '--env', 'prod', '-o', 'json'])
    expect(undeployed.code).toBe(EXIT.ok)
    expect(json(undeployed)).toMatchObject({ serve_name: 'fraud', env: 'prod' })
    expect(fake.get('Deployment', NS, 'fraud-prod')).toBeUndefined()
  })

  test('schedule apply, get and preview', async () => {
    const applied = await cli(['schedule', 'apply', 'fraud', '--env', 'prod', '-f', 'schedule.yaml', '-o', 'json'])
    expect(applied.code).toBe(EXIT.ok)
    expect(json(applied)).toMatchObject({ timezone: 'Europe/Berlin', windows: [{ name: 'business-hours' }] })
    expect((await cli(['schedule', 'get', 'fraud', '--env', 'prod'])).code).toBe(EXIT.ok)
    const preview = await cli(['schedule', 'preview', 'fraud', '--env', 'prod', '--from', '2026-11-30T00:00:00Z', '--to', '2026-12-01T00:00:00Z', '-o', 'json'])
    expect(preview.code).toBe(EXIT.ok)
    expect(json(preview)).toMatchObject({ from: '2026-11-30T00:00:00.000Z' })
  })
})

describe('cli — errors and usage', () => {
  test('bad usage exits 2 and sends nothing', async () => {
    const before = await ctx.query('select count(*) as n from audit_log')
    const cases = [
      [],
      ['launch'],
      ['deploy', 'fraud', '--artifact', 'v1'],
      ['deploy', '--env', 'prod', '--artifact', 'v1'],
      ['deploy', 'fraud', '--env', 'prod', '--artifact', 'v1', '--bogus'],
      ['deploy', 'fraud', '--env', 'prod', '--artifact', 'v1', '--wait=soon'],
      ['deploy', 'fraud', '--env', 'prod', '--artifact', 'v1', '--set', 'NOEQUALS'],
      ['deploy', 'fraud', '--env', 'prod', '--artifact', 'v1', '--strategy', 'canary-ish'],
      ['history', 'fraud', '--limit', '0'],
      ['status', 'fraud', '--env', 'prod', '-o', 'xml'],
      ['env', 'apply', '-f', 'missing.yaml'],
      ['env', 'apply', '-f', 'list.yaml'],
      ['artifact', 'publish', 'fraud', '--version', 'v9'],
    ]
    for (const args of cases) {
      const run = await cli(args)
      expect({ args, code: run.code }).toEqual({ args, code: EXIT.usage })
      // What was wrong, in one line: the flag or argument, with the usage — or the file and why.
      expect(run.stderr + run.stdout).toMatch(/usage|cannot read missing\.yaml: ENOENT|list\.yaml must hold one object/)
    }
    expect(await ctx.query('select count(*) as n from audit_log')).toEqual(before)
  })

  test('refused by the service: exit 1 with its code, message and fields', async () => {
    const missing = await cli(['deploy', 'nope', '--env', 'prod', '--artifact', 'v1'])
    expect(missing.code).toBe(EXIT.failed)
    expect(missing.stderr).toContain('error: deploy: NOT_FOUND')
    const unauthenticated = await cli(['status', 'fraud', '--env', 'prod'], { env: { DARWIN_ML_SERVE_TOKEN: 'not-a-token' } })
    expect(unauthenticated.code).toBe(EXIT.failed)
    expect(unauthenticated.stderr).toContain('error: status: UNAUTHENTICATED: Invalid, expired or revoked token')
    const invalid = await cli(['artifact', 'register', 'fraud', '--version', 'not a version!', '--image', 'x'])
    expect(invalid.code).toBe(EXIT.failed)
    expect(invalid.stderr).toMatch(/VALIDATION_FAILED: .*\n  \/version: /)
  })

  test('no server, or one that cannot be reached: 2 and 5', async () => {
    expect((await cli(['status', 'fraud', '--env', 'prod'], { env: { DARWIN_ML_SERVE_URL: undefined } })).code).toBe(EXIT.usage)
    let stderr = ''
    const code = await runCli(['status', 'fraud', '--env', 'prod', '--url', 'http://127.0.0.1:1', '--token', 't'], {
      stdout: () => {},
      stderr: (text) => {
        stderr += text
      },
      env: {},
      isTTY: false,
      readFile: async () => '',
    })
    expect(code).toBe(EXIT.unreachable)
    expect(stderr).toContain('could not be reached')
  })
})
