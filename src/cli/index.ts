/**
 * The command-line client, for CI pipelines and people: `darwin-ml-serve deploy fraud --env prod
 * --artifact v2 --wait` (the binary's subcommands beside `serve`, `migrate` and `healthcheck`; from
 * source `bun run cli -- …`). Every call goes through the typed client (src/client), so the CLI and
 * the routes cannot drift. Long work (`--wait`) shows its progress on stderr — one rewritten line on a
 * terminal, a line per change in CI logs — and the exit code says how it ended (./exit.ts).
 */
import { parseArgs } from 'node:util'
import { parse as parseYaml } from 'yaml'
import { type Client, createClient } from '../client'
import type { CliCommand } from './commands'
import { CliError, EXIT, type ExitCode, exitCodeOf } from './exit'
import { format, OUTPUT_FORMATS, type OutputFormat } from './output'

/** What the CLI touches of the world; tests give their own. */
export interface CliIO {
  stdout(text: string): void
  /** Progress and errors. */
  stderr(text: string): void
  env: Record<string, string | undefined>
  /** Whether stderr is a terminal (progress rewrites one line) or a log (a line per change). */
  isTTY: boolean
  readFile(path: string): Promise<string>
  /** Another fetch (tests call the app in process). */
  fetch?: (request: Request) => Promise<Response>
  /** Between two polls of `--wait`; default 2 s. */
  pollIntervalMs?: number
}

/** `--wait` without a value: ten minutes. */
const DEFAULT_WAIT_SECONDS = 600

const USAGE = `usage: darwin-ml-serve <command> [arguments] [--url URL] [--token TOKEN] [--output table|json|yaml]

  deploy <serve> --env E --artifact V [--wait[=SECONDS]] [--set KEY=VALUE]… [--strategy rolling|recreate|canary]
         [--steps 10,50,100] [--step-seconds N] [--no-auto-rollback]
  rollback <serve> --env E [--revision N] [--force] [--wait[=SECONDS]]
  undeploy <serve> --env E
  promote <serve> --env E [--full]       the canary's next step now (--full: straight to 100 %)
  abort <serve> --env E                  the canary ends; all traffic back on the stable revision
  status <serve> --env E                  what is deployed, and the rollout's progress
  history <serve> [--env E] [--limit N]   revisions, newest first
  manifests <serve> --env E --artifact V  the manifests a deploy would apply (YAML)
  artifact build <serve> --version V [--repo URL] [--branch B] [--commit SHA] [--dockerfile PATH] [--wait[=SECONDS]]
  artifact register <serve> --version V --image IMAGE
  schedule apply <serve> --env E -f schedule.yaml | schedule get <serve> --env E | schedule preview <serve> --env E [--from T] [--to T]
  env apply -f env.yaml | env get <name>
  serve apply -f serve.yaml | serve get <name>
  infra apply <serve> --env E -f infra.yaml | infra get <serve> --env E

The server and token also come from DARWIN_ML_SERVE_URL and DARWIN_ML_SERVE_TOKEN.
Exit codes: 0 success, 1 failed, 2 usage, 3 timeout, 4 conflict (409), 5 unreachable (or 503).`


const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  output: { type: 'string', short: 'o' },
  env: { type: 'string', short: 'e' },
  artifact: { type: 'string' },
  version: { type: 'string' },
  wait: { type: 'string' },
  set: { type: 'string', multiple: true },
  strategy: { type: 'string' },
  steps: { type: 'string' },
  'step-seconds': { type: 'string' },
  'no-auto-rollback': { type: 'boolean' },
  full: { type: 'boolean' },
  revision: { type: 'string' },
  force: { type: 'boolean' },
  limit: { type: 'string' },
  repo: { type: 'string' },
  branch: { type: 'string' },
  commit: { type: 'string' },
  dockerfile: { type: 'string' },
  image: { type: 'string' },
  file: { type: 'string', short: 'f' },
  from: { type: 'string' },
  to: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

type Flags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values']

const usage = (message: string) => new CliError(EXIT.usage, `${message}\n\n${USAGE}`)

/** What an Eden call answers (the parts the CLI reads). */
interface Answer {
  data: unknown
  error: { status: unknown; value: unknown } | null
  status: number
  /** None when nothing was answered (Eden then reports a 503 whose value is the fetch error). */
  response?: Response
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** Sends one call; a network failure is "unreachable" (5), an error answer its exit code with the service's message. */
async function call(what: string, send: () => Promise<Answer>): Promise<unknown> {
  let answer: Answer
  try {
    answer = await send()
  } catch (error) {
    throw new CliError(EXIT.unreachable, `${what}: the service could not be reached (${error instanceof Error ? error.message : String(error)})`)
  }
  if (answer.error === null) return answer.data
  const body = answer.error.value
  if (answer.response === undefined) throw new CliError(EXIT.unreachable, `${what}: the service could not be reached (${body instanceof Error ? body.message : String(body)})`)
  if (!isRecord(body) || body.status !== 'ERROR') throw new CliError(exitCodeOf(answer.status), `${what}: HTTP ${answer.status} ${typeof body === 'string' ? body.slice(0, 300) : ''}`.trim())
  const fields = Array.isArray(body.errors) ? body.errors.filter(isRecord).map((error) => `\n  ${String(error.path)}: ${String(error.message)}`).join('') : ''
  throw new CliError(exitCodeOf(answer.status), `${what}: ${String(body.code ?? answer.status)}: ${String(body.message ?? '')}${fields}`)
}

/** The envelope's `data` (every JSON answer of the service is `{status, message, data}`). */
const dataOf = (answer: unknown): unknown => (isRecord(answer) && 'data' in answer ? answer.data : answer)

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw usage(`--${flag} is required`)
  return value
}

function integer(value: string | undefined, flag: string, bounds: { min: number; max: number }): number | undefined {
  if (value === undefined) return undefined
  const parsed = Number(value)
  if (!Number.isInteger(parsed) || parsed < bounds.min || parsed > bounds.max) throw usage(`--${flag} must be an integer from ${bounds.min} to ${bounds.max}, not "${value}"`)
  return parsed
}

/** `--wait` (bare: the default), `--wait=N`; undefined without the flag. */
function waitSeconds(flags: Flags): number | undefined {
  if (flags.wait === undefined) return undefined
  return flags.wait === '' ? DEFAULT_WAIT_SECONDS : integer(flags.wait, 'wait', { min: 1, max: 86_400 })
}

/** A file of YAML or JSON (YAML is a superset), as the body the service validates. */
async function bodyFile(io: CliIO, path: string | undefined): Promise<Record<string, unknown>> {
  const file = required(path, 'file')
  let parsed: unknown
  try {
    parsed = parseYaml(await io.readFile(file))
  } catch (error) {
    throw new CliError(EXIT.usage, `cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`)
  }
  if (!isRecord(parsed)) throw new CliError(EXIT.usage, `${file} must hold one object (YAML or JSON)`)
  return parsed
}

/** `KEY=VALUE` pairs of `--set` as environment variables. */
function environmentVariables(pairs: string[] | undefined): Record<string, string> {
  const variables: Record<string, string> = {}
  for (const pair of pairs ?? []) {
    const at = pair.indexOf('=')
    if (at <= 0) throw usage(`--set takes KEY=VALUE, not "${pair}"`)
    variables[pair.slice(0, at)] = pair.slice(at + 1)
  }
  return variables
}

/** Progress of long work on stderr: one line rewritten on a terminal, a line per change in a log. */
function progressReporter(io: CliIO) {
  let last = ''
  return {
    show(line: string) {
      if (line === last) return
      last = line
      if (io.isTTY) io.stderr(`\r\x1b[2K${line}`)
      else io.stderr(`${line}\n`)
    },
    done() {
      if (io.isTTY && last !== '') io.stderr('\n')
    },
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface RevisionView {
  revision: number
  status: string
  failure_reason: string | null
  /** After an automatic rollback: the revision serving in its place. */
  rolled_back_to: number | null
}

const asRevision = (value: unknown): RevisionView => {
  if (!isRecord(value) || typeof value.revision !== 'number' || typeof value.status !== 'string') throw new CliError(EXIT.failed, 'the service answered something that is not a revision')
  return {
    revision: value.revision,
    status: value.status,
    failure_reason: typeof value.failure_reason === 'string' ? value.failure_reason : null,
    rolled_back_to: typeof value.rolled_back_to === 'number' ? value.rolled_back_to : null,
  }
}

/** How a revision ended, in words: its status, why, and what serves in its place after an automatic rollback. */
const endedAs = (revision: RevisionView) =>
  `${revision.status}${revision.failure_reason ? `: ${revision.failure_reason}` : ''}${revision.rolled_back_to === null ? '' : `; rolled back automatically: revision ${revision.rolled_back_to} serves in its place`}`

/** A canary's step as a progress line: where it is, its pods, and when it moves on. */
function canaryLine(canary: Record<string, unknown>): string {
  const steps = Array.isArray(canary.steps) ? canary.steps.length : '?'
  const health = isRecord(canary.health) ? canary.health : undefined
  const pods = health ? `, ${String(health.ready_replicas)}/${String(health.desired_replicas)} ready${typeof health.problem === 'string' ? ` (${health.problem})` : ''}` : ''
  const next = typeof canary.next_step_in_seconds === 'number' ? `, next step in ${canary.next_step_in_seconds} s` : ''
  return `canary step ${String(canary.step)}/${steps} at ${String(canary.weight)} %${pods}${next}`
}

/** Where long work stands: its progress line, and whether it has ended. */
interface Progress {
  line: string
  ended: boolean
}

/**
 * Long work followed to its end: `state` first, then `read()` at every poll, each state's line shown
 * as progress, until `progressOf` says it ended; past `seconds`, exit 3 with `timedOut`'s message.
 */
async function follow<T>(io: CliIO, seconds: number, state: T, read: () => Promise<T>, progressOf: (state: T) => Progress, timedOut: (state: T) => string): Promise<T> {
  const deadline = Date.now() + seconds * 1000
  const progress = progressReporter(io)
  try {
    for (let current = state; ; current = await read()) {
      const { line, ended } = progressOf(current)
      progress.show(line)
      if (ended) return current
      if (Date.now() >= deadline) throw new CliError(EXIT.timeout, timedOut(current))
      await sleep(io.pollIntervalMs ?? 2_000)
    }
  } finally {
    progress.done()
  }
}

const inFlight = (revision: RevisionView) => revision.status === 'pending' || revision.status === 'deploying'

/** Follows a revision until its rollout ends: its phase and ready/desired replicas as progress. */
async function waitForRollout(client: Client, io: CliIO, serve: string, env: string, revision: number, seconds: number): Promise<RevisionView> {
  const placement = client.api.v1.serve({ serve_name: serve })
  const read = async () => {
    const current = asRevision(dataOf(await call(`revision ${revision}`, () => placement.deployments({ revision }).get())))
    if (!inFlight(current)) return { current }
    const view = dataOf(await call('status', () => placement.deployment({ env }).get()))
    return {
      current,
      rollout: isRecord(view) && isRecord(view.rollout) ? view.rollout : undefined,
      canary: isRecord(view) && isRecord(view.canary) && view.canary.phase === 'stepping' ? view.canary : undefined,
    }
  }
  const settled = await follow(
    io,
    seconds,
    await read(),
    read,
    ({ current, rollout, canary }) => {
      if (!inFlight(current)) return { ended: true, line: `revision ${revision}: ${endedAs(current)}` }
      const line = canary
        ? `revision ${revision}: ${current.status}, ${canaryLine(canary)}`
        : rollout
          ? `revision ${revision}: ${current.status}, ${String(rollout.phase)}, ${String(rollout.ready_replicas)}/${String(rollout.desired_replicas)} ready, ${String(rollout.updated_replicas)} updated`
          : `revision ${revision}: ${current.status}`
      return { ended: false, line }
    },
    ({ current }) => `revision ${revision} is still ${current.status} after ${seconds} s; it goes on: darwin-ml-serve status ${serve} --env ${env}`,
  )
  return settled.current
}

/** The exit of a waited rollout: 0 when active, 1 with the reason otherwise. */
function rolloutExit(revision: RevisionView): ExitCode {
  if (revision.status === 'active') return EXIT.ok
  throw new CliError(EXIT.failed, `revision ${revision.revision} ${endedAs(revision)}`)
}

interface Command {
  client: Client
  io: CliIO
  flags: Flags
  args: string[]
  print(value: unknown): void
}

function positional(args: string[], index: number, what: string): string {
  const value = args[index]
  if (value === undefined) throw usage(`missing <${what}>`)
  return value
}

/** After a deploy or a rollback: the new revision, or with `--wait` the revision once its rollout ended. */
async function followRevision({ client, io, print }: Command, serve: string, env: string, created: RevisionView, wait: number | undefined): Promise<ExitCode> {
  io.stderr(`revision ${created.revision} of ${serve} in ${env}: ${created.status}\n`)
  if (wait === undefined) {
    print(created)
    return EXIT.ok
  }
  const settled = await waitForRollout(client, io, serve, env, created.revision, wait)
  print(settled)
  return rolloutExit(settled)
}

async function deploy(command: Command): Promise<ExitCode> {
  const { client, flags, args } = command
  const serve = positional(args, 0, 'serve')
  const env = required(flags.env, 'env')
  const strategy = flags.strategy ?? 'rolling'
  if (!isStrategy(strategy)) throw usage(`--strategy must be rolling, recreate or canary, not "${strategy}"`)
  if (strategy !== 'canary' && (flags.steps !== undefined || flags['step-seconds'] !== undefined)) throw usage('--steps and --step-seconds go with --strategy canary')
  const wait = waitSeconds(flags)
  const canary = strategy === 'canary' ? canarySettings(flags) : undefined
  const body = {
    env,
    artifact_version: required(flags.artifact, 'artifact'),
    api_serve_deployment_config: {
      deployment_strategy: strategy,
      environment_variables: environmentVariables(flags.set),
      ...(flags['no-auto-rollback'] ? { auto_rollback: false } : {}),
      ...(canary ? { canary } : {}),
    },
  }
  const created = asRevision(dataOf(await call('deploy', () => client.api.v1.serve({ serve_name: serve }).deploy.post(body))))
  return followRevision(command, serve, env, created, wait)
}

const STRATEGIES = ['rolling', 'recreate', 'canary'] as const
const isStrategy = (value: string): value is (typeof STRATEGIES)[number] => (STRATEGIES as readonly string[]).includes(value)

/** `--steps 10,50,100` and `--step-seconds N`; what is left out the service fills in. */
function canarySettings(flags: Flags): { steps?: number[]; step_seconds?: number } {
  const steps = flags.steps?.split(',').map((step) => integer(step.trim(), 'steps', { min: 1, max: 100 }) as number)
  const stepSeconds = integer(flags['step-seconds'], 'step-seconds', { min: 0, max: 86_400 })
  return { ...(steps ? { steps } : {}), ...(stepSeconds === undefined ? {} : { step_seconds: stepSeconds }) }
}

/** promote / abort: the canary's next step (or all of them), or its end; prints the placement as it now is. */
async function changeCanary({ client, flags, args, print }: Command, command: 'promote' | 'abort'): Promise<ExitCode> {
  const serve = positional(args, 0, 'serve')
  const env = required(flags.env, 'env')
  const placement = client.api.v1.serve({ serve_name: serve }).deployment({ env })
  const answer = command === 'promote' ? await call('promote', () => placement.promote.post(flags.full ? { full: true } : {})) : await call('abort', () => placement.abort.post())
  print(dataOf(answer))
  return EXIT.ok
}

async function rollback(command: Command): Promise<ExitCode> {
  const { client, flags, args } = command
  const serve = positional(args, 0, 'serve')
  const env = required(flags.env, 'env')
  const revision = integer(flags.revision, 'revision', { min: 1, max: Number.MAX_SAFE_INTEGER })
  const wait = waitSeconds(flags)
  const body = { env, ...(revision === undefined ? {} : { revision }), ...(flags.force ? { force: true } : {}) }
  const created = asRevision(dataOf(await call('rollback', () => client.api.v1.serve({ serve_name: serve }).rollback.post(body))))
  return followRevision(command, serve, env, created, wait)
}

async function undeploy({ client, flags, args, print }: Command): Promise<ExitCode> {
  const serve = positional(args, 0, 'serve')
  const env = required(flags.env, 'env')
  print(dataOf(await call('undeploy', () => client.api.v1.serve({ serve_name: serve }).undeploy.post({ env }))))
  return EXIT.ok
}

async function status({ client, flags, args, print }: Command): Promise<ExitCode> {
  const serve = positional(args, 0, 'serve')
  const env = required(flags.env, 'env')
  print(dataOf(await call('status', () => client.api.v1.serve({ serve_name: serve }).deployment({ env }).get())))
  return EXIT.ok
}

async function history({ client, flags, args, print }: Command): Promise<ExitCode> {
  const serve = positional(args, 0, 'serve')
  const limit = integer(flags.limit, 'limit', { min: 1, max: 200 }) ?? 20
  const query = { limit, ...(flags.env ? { env: flags.env } : {}) }
  print(dataOf(await call('history', () => client.api.v1.serve({ serve_name: serve }).deployments.get({ query }))))
  return EXIT.ok
}

async function manifests({ client, io, flags, args }: Command): Promise<ExitCode> {
  const serve = positional(args, 0, 'serve')
  const env = required(flags.env, 'env')
  const query = { artifact_version: required(flags.artifact, 'artifact') }
  // YAML unless another output is asked for: what `kubectl apply -f -` takes.
  const output = flags.output ?? 'yaml'
  const answer = await call('manifests', () =>
    client.api.v1.serve({ serve_name: serve }).manifests({ env }).get({ query, headers: output === 'yaml' ? { accept: 'application/yaml' } : {} }),
  )
  io.stdout(typeof answer === 'string' ? answer.trimEnd() : format(dataOf(answer), output === 'table' ? 'json' : (output as OutputFormat)))
  return EXIT.ok
}

async function artifact({ client, io, flags, args, print }: Command): Promise<ExitCode> {
  const action = positional(args, 0, 'build|register')
  const serve = positional(args, 1, 'serve')
  const version = required(flags.version, 'version')
  if (action === 'register') {
    const body = { serve_name: serve, version, image: required(flags.image, 'image') }
    print(dataOf(await call('register artifact', () => client.api.v1.artifact.post(body))))
    return EXIT.ok
  }
  if (action !== 'build') throw usage(`artifact takes build or register, not "${action}"`)
  const wait = waitSeconds(flags)
  const body = {
    serve_name: serve,
    version,
    ...(flags.repo ? { github_repo_url: flags.repo } : {}),
    ...(flags.branch ? { branch: flags.branch } : {}),
    ...(flags.commit ? { commit: flags.commit } : {}),
    ...(flags.dockerfile ? { dockerfile_path: flags.dockerfile } : {}),
  }
  let built = dataOf(await call('build artifact', () => client.api.v1.artifact.post(body)))
  if (wait !== undefined) {
    const statusOf = (artifact: unknown) => (isRecord(artifact) ? String(artifact.status) : 'unknown')
    built = await follow(
      io,
      wait,
      built,
      async () => dataOf(await call('artifact', () => client.api.v1.serve({ serve_name: serve }).artifact({ version }).get())),
      (artifact) => {
        const status = statusOf(artifact)
        return { line: `artifact ${version} of ${serve}: ${status}`, ended: status !== 'queued' && status !== 'building' }
      },
      (artifact) => `artifact ${version} is still ${statusOf(artifact)} after ${wait} s; it goes on`,
    )
    if (isRecord(built) && built.status === 'failed') throw new CliError(EXIT.failed, `artifact ${version} failed: ${String(built.failure_reason ?? 'no reason given')}`)
  }
  print(built)
  return EXIT.ok
}

async function schedule({ client, io, flags, args, print }: Command): Promise<ExitCode> {
  const action = positional(args, 0, 'apply|get|preview')
  const serve = positional(args, 1, 'serve')
  const env = required(flags.env, 'env')
  const scheduleOf = client.api.v1.serve({ serve_name: serve })['scaling-schedule']({ env })
  if (action === 'apply') {
    // The service validates the file's content and names any wrong field (422).
    const body = (await bodyFile(io, flags.file)) as Parameters<typeof scheduleOf.put>[0]
    print(dataOf(await call('apply schedule', () => scheduleOf.put(body))))
  } else if (action === 'get') {
    print(dataOf(await call('schedule', () => scheduleOf.get())))
  } else if (action === 'preview') {
    const query = { ...(flags.from ? { from: flags.from } : {}), ...(flags.to ? { to: flags.to } : {}) }
    print(dataOf(await call('schedule preview', () => scheduleOf.preview.get({ query }))))
  } else {
    throw usage(`schedule takes apply, get or preview, not "${action}"`)
  }
  return EXIT.ok
}

/** A resource the file names: `get <name>`, or `apply -f` that creates it when new and else changes it. */
interface NamedResource {
  /** The command, in messages. */
  command: string
  get(name: string): Promise<Answer>
  create(file: Record<string, unknown>): Promise<Answer>
  update(name: string, file: Record<string, unknown>): Promise<Answer>
}

async function namedResource({ io, flags, args, print }: Command, resource: NamedResource): Promise<ExitCode> {
  const action = positional(args, 0, 'apply|get')
  if (action === 'get') {
    const name = positional(args, 1, 'name')
    print(dataOf(await call(resource.command, () => resource.get(name))))
    return EXIT.ok
  }
  if (action !== 'apply') throw usage(`${resource.command} takes apply or get, not "${action}"`)
  const file = await bodyFile(io, flags.file)
  const name = typeof file.name === 'string' ? file.name : ''
  if (name === '') throw new CliError(EXIT.usage, `the ${resource.command} file needs a name`)
  const exists = (await resource.get(name)).status === 200
  const result = exists ? await call(`update ${resource.command}`, () => resource.update(name, file)) : await call(`create ${resource.command}`, () => resource.create(file))
  print(dataOf(result))
  return EXIT.ok
}

// The files' content goes as it is: the service validates it and names any wrong field (422).
type EnvironmentCreate = Parameters<Client['api']['v1']['environment']['post']>[0]
type EnvironmentUpdate = Parameters<ReturnType<Client['api']['v1']['environment']>['patch']>[0]
type ServeCreate = Parameters<Client['api']['v1']['serve']['post']>[0]
type ServeUpdate = Parameters<ReturnType<Client['api']['v1']['serve']>['patch']>[0]

/** An environment: `apply` merges the file's configs into an existing one. */
const environment = (command: Command) =>
  namedResource(command, {
    command: 'env',
    get: (name) => command.client.api.v1.environment({ environment_name: name }).get(),
    create: (file) => command.client.api.v1.environment.post(file as EnvironmentCreate),
    update: (name, file) => command.client.api.v1.environment({ environment_name: name }).patch({ environment_configs: file.environment_configs } as EnvironmentUpdate),
  })

/** A serve: `apply` changes an existing one's description and space (name and type are fixed). */
const serveCommand = (command: Command) =>
  namedResource(command, {
    command: 'serve',
    get: (name) => command.client.api.v1.serve({ serve_name: name }).get(),
    create: (file) => command.client.api.v1.serve.post(file as ServeCreate),
    update: (name, { name: _, type: __, ...changes }) => command.client.api.v1.serve({ serve_name: name }).patch(changes as ServeUpdate),
  })

/** `apply -f` of an infra config: created when new, else the given fields changed (a deployed serve is redeployed). */
async function infra({ client, io, flags, args, print }: Command): Promise<ExitCode> {
  const action = positional(args, 0, 'apply|get')
  const serve = positional(args, 1, 'serve')
  const env = required(flags.env, 'env')
  const config = client.api.v1.serve({ serve_name: serve })['infra-config']({ env })
  if (action === 'get') {
    print(dataOf(await call('infra config', () => config.get())))
    return EXIT.ok
  }
  if (action !== 'apply') throw usage(`infra takes apply or get, not "${action}"`)
  const file = await bodyFile(io, flags.file)
  const exists = (await config.get()).status === 200
  // The service validates the file's content and names any wrong field (422).
  const result = exists
    ? await call('update infra config', () => config.patch(file as Parameters<typeof config.patch>[0]))
    : await call('create infra config', () => config.post(file as Parameters<typeof config.post>[0]))
  print(dataOf(result))
  return EXIT.ok
}

const COMMANDS: Record<Exclude<CliCommand, 'help'>, (command: Command) => Promise<ExitCode>> = {
  deploy,
  rollback,
  undeploy,
  promote: (command) => changeCanary(command, 'promote'),
  abort: (command) => changeCanary(command, 'abort'),
  status,
  history,
  manifests,
  artifact,
  schedule,
  env: environment,
  serve: serveCommand,
  infra,
}

/** Runs one command line (without the executable); returns the exit code. Never throws. */
export async function runCli(argv: string[], io: CliIO): Promise<ExitCode> {
  try {
    // `--wait` alone means the default; parseArgs has no optional values.
    const normalised = argv.map((arg) => (arg === '--wait' ? '--wait=' : arg))
    let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>
    try {
      parsed = parseArgs({ args: normalised, options: OPTIONS, allowPositionals: true, strict: true })
    } catch (error) {
      throw usage(error instanceof Error ? error.message : String(error))
    }
    const { values: flags, positionals } = parsed
    const [name, ...args] = positionals
    if (name === undefined || name === 'help' || flags.help) {
      io.stdout(USAGE)
      return name === undefined && !flags.help ? EXIT.usage : EXIT.ok
    }
    const run = COMMANDS[name as keyof typeof COMMANDS]
    if (!run) throw usage(`unknown command "${name}"`)
    const output = flags.output ?? 'table'
    if (!(OUTPUT_FORMATS as readonly string[]).includes(output)) throw usage(`--output must be table, json or yaml, not "${output}"`)
    const url = flags.url ?? io.env.DARWIN_ML_SERVE_URL
    if (!url) throw usage('no server: give --url or set DARWIN_ML_SERVE_URL')
    const token = flags.token ?? io.env.DARWIN_ML_SERVE_TOKEN
    const client = createClient({ url, ...(token ? { token } : {}), ...(io.fetch ? { fetch: io.fetch } : {}) })
    return await run({ client, io, flags, args, print: (value) => io.stdout(format(value, output as OutputFormat)) })
  } catch (error) {
    if (error instanceof CliError) {
      io.stderr(`error: ${error.message}\n`)
      return error.exitCode
    }
    io.stderr(`error: ${error instanceof Error ? error.message : String(error)}\n`)
    return EXIT.failed
  }
}
