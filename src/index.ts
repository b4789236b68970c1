/**
 * Process entry, also the compiled binary's: `serve` (default) is config → telemetry → database
 * (+ migrations) → app.listen with a graceful shutdown on SIGTERM/SIGINT; `migrate` applies pending
 * migrations and exits (the Kubernetes Job, `bun run db:migrate`); `healthcheck` exits 0 when this
 * host's /healthcheck answers 200 (the image's HEALTHCHECK: distroless has no curl).
 */
import { createApp, createWorkers } from './app'
import { CLI_COMMANDS } from './cli/commands'
import { createClusterDrivers } from './cluster'
import { type Config, ConfigError, loadConfig } from './config'
import { openDatabase } from './db/connect'
import { NoDatabaseServerError } from './db/local-server'
import { createLogger, describeError } from './lib/logger'
import { startTelemetry } from './lib/telemetry'
import { createArtifactPoller } from './modules/artifact/poller'
import { artifactDepsFor } from './modules/artifact/service'
import { scalingCronJob } from './modules/scaling'
import { ensureBootstrapAdmin } from './modules/token/service'
import { cacheVerifiedTokens } from './modules/token/verified-tokens'
import { createIdempotencyJanitor } from './plugins/idempotency'
import { TemplateError, templateSet } from './render/templates'

function configOrExit(env: Record<string, string | undefined> = process.env): Config {
  try {
    return loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`invalid configuration: ${error.message}`)
      process.exit(2)
    }
    throw error
  }
}

async function migrate() {
  const config = configOrExit({ ...process.env, MIGRATE_ON_START: 'true' })
  const log = createLogger({ level: config.logLevel })
  try {
    const opened = await openDatabase(config, log, { allowLocal: config.isLocal })
    await opened.database.close()
    await opened.localServer?.stop()
  } catch (error) {
    console.error(`migration failed: ${JSON.stringify(describeError(error))}`)
    process.exit(1)
  }
}

async function healthcheck() {
  const { port } = configOrExit()
  const healthy = await fetch(`http://127.0.0.1:${port}/healthcheck`, { signal: AbortSignal.timeout(3_000) })
    .then((response) => response.status === 200)
    .catch(() => false)
  process.exit(healthy ? 0 : 1)
}

async function serve() {
  const config = configOrExit()
  const log = createLogger({ level: config.logLevel })
  try {
    // Parsed now, so that a broken TEMPLATES_DIR stops the start rather than failing the first deploy.
    templateSet(config.templatesDir)
  } catch (error) {
    if (!(error instanceof TemplateError)) throw error
    console.error(`invalid templates: ${error.message}`)
    process.exit(2)
  }
  const telemetry = await startTelemetry(config.telemetry)

  const opened = await openDatabase(config, log, { allowLocal: config.isLocal }).catch(
    (error: unknown) => {
      const message = error instanceof NoDatabaseServerError ? error.message : `cannot open the database: ${describeError(error).error_message ?? error}`
      console.error(message)
      process.exit(1)
    },
  )

  if (!config.auth.enabled) {
    log.warn('AUTHENTICATION IS DISABLED (AUTH_ENABLED=false): anyone who can reach this port can deploy. Allowed only with ENV=local.')
  }
  const generatedToken = await ensureBootstrapAdmin(opened.database.db, config.auth.bootstrapAdminUsername, config.auth.bootstrapAdminToken)
  if (generatedToken) {
    // Printed once, to the terminal rather than the JSON log stream, on the very first start.
    console.error(
      `\nNo API token existed, so an admin token was created for "${config.auth.bootstrapAdminUsername}". It is shown only now:\n\n  ${generatedToken}\n\nUse it as "Authorization: Bearer <token>", or set ML_SERVE_BOOTSTRAP_ADMIN_TOKEN.\n`,
    )
  }

  cacheVerifiedTokens(opened.database.db, config.auth.tokenCacheTtlMs)
  const context = { config, database: opened.database, log, clusterDrivers: createClusterDrivers(config) }
  const workers = createWorkers(context)
  const app = createApp(context, workers)
  app.listen({ port: config.port, hostname: '0.0.0.0' })
  // After listen: making the cron job is a good part of start-up CPU, and its first tick is a minute away.
  // Off (SCALING_ENABLED=false) where a platform calls POST /api/v1/scaling/tick on a schedule instead.
  const scalingJob = config.scaling.enabled ? app.use(scalingCronJob(workers.scaling, config.scaling.tickCron, log)).store.cron.scaling : undefined
  // Picks up builds left pending by a previous run at once, then follows new ones.
  const artifactPoller = createArtifactPoller(artifactDepsFor(context), { intervalMs: config.artifactBuilder.pollIntervalMs })
  artifactPoller.start()
  // Deletes expired Idempotency-Key rows in small batches, now and every 10 minutes.
  const idempotencyJanitor = createIdempotencyJanitor({ db: opened.database.db, log })
  idempotencyJanitor.start()
  // Resumes following every rollout a previous process left in flight, then follows new ones.
  workers.deployment.tracker.start()
  const drivers = context.clusterDrivers.availability()
  if (!drivers.kubernetes.usable) {
    log.warn('no Kubernetes cluster is configured: deploys to environments with cluster_driver "kubernetes" answer 503 CLUSTER_NOT_CONFIGURED', { detail: drivers.kubernetes.detail })
  }
  log.info('listening', { cluster_drivers: drivers, db_driver: opened.database.driver, port: app.server?.port, env: config.env, telemetry: config.telemetry.enabled, scaling_tick: scalingJob ? config.scaling.tickCron : 'off', docs: `http://localhost:${app.server?.port}/docs` })

  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    log.info('shutting down', { signal })
    const timer = setTimeout(() => {
      log.error('shutdown timed out; exiting', { timeout_ms: config.shutdownTimeoutMs })
      process.exit(1)
    }, config.shutdownTimeoutMs)
    // Each step runs even when one before it failed (a database already gone cannot release a lease).
    const step = async (name: string, fn: () => unknown) => {
      try {
        await fn()
      } catch (error) {
        log.warn(`shutdown: ${name} failed`, describeError(error))
      }
    }
    // stop() without force waits for in-flight requests and stops accepting new ones.
    await step('http server', () => app.stop(false))
    await step('artifact poller', () => artifactPoller.stop())
    await step('idempotency janitor', () => idempotencyJanitor.stop())
    await step('rollout tracker', () => workers.deployment.tracker.stop())
    await step('scaling scheduler', async () => {
      scalingJob?.stop()
      await workers.scaling.stop()
    })
    await step('database', () => opened.database.close())
    await step('local database server', () => opened.localServer?.stop())
    await step('telemetry', () => telemetry.shutdown())
    clearTimeout(timer)
    log.info('stopped')
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
}

/** The client subcommands (deploy, status, …: src/cli), loaded only when one is asked for. */
async function cli() {
  const { runCli } = await import('./cli')
  const code = await runCli(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(`${text}\n`),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    isTTY: process.stderr.isTTY === true,
    readFile: (path) => Bun.file(path).text(),
  })
  // Not process.exit(): it could cut the output short on a pipe; nothing else keeps the process up.
  process.exitCode = code
}

const commands: Record<string, () => Promise<void>> = { serve, migrate, healthcheck }
const name = process.argv[2] ?? 'serve'
// `serve` alone runs the service (as it always has); `serve apply|get` is the client's serve command.
const clientServe = name === 'serve' && ['apply', 'get'].includes(process.argv[3] ?? '')
const command = clientServe ? cli : (commands[name] ?? ((CLI_COMMANDS as readonly string[]).includes(name) ? cli : undefined))
if (!command) {
  console.error(`usage: darwin-ml-serve [${[...Object.keys(commands), ...CLI_COMMANDS].join('|')}] (darwin-ml-serve help: the client commands)`)
  process.exit(2)
}
await command()
