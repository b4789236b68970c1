/**
 * Process entry: config → database (+ migrations) → app.listen; graceful shutdown on SIGTERM/SIGINT.
 */
import { createApp } from './app'
import { ConfigError, loadConfig } from './config'
import { openDatabase } from './db/connect'
import { NoDatabaseServerError } from './db/local-server'
import { createLogger, describeError } from './lib/logger'
import { createArtifactPoller } from './modules/artifact/poller'
import { artifactDepsFor } from './modules/artifact/service'
import { ensureBootstrapAdmin } from './modules/token/service'

async function main() {
  let config: ReturnType<typeof loadConfig>
  try {
    config = loadConfig()
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`invalid configuration: ${error.message}`)
      process.exit(2)
    }
    throw error
  }
  const log = createLogger({ level: config.logLevel })

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

  const context = { config, database: opened.database, log }
  const app = createApp(context)
  app.listen({ port: config.port, hostname: '0.0.0.0' })
  // Picks up builds left pending by a previous run at once, then follows new ones.
  const artifactPoller = createArtifactPoller(artifactDepsFor(context), { intervalMs: config.artifactBuilder.pollIntervalMs })
  artifactPoller.start()
  log.info('listening', { port: app.server?.port, env: config.env, docs: `http://localhost:${app.server?.port}/docs` })

  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    log.info('shutting down', { signal })
    const timer = setTimeout(() => {
      log.error('shutdown timed out; exiting', { timeout_ms: config.shutdownTimeoutMs })
      process.exit(1)
    }, config.shutdownTimeoutMs)
    // stop() without force waits for in-flight requests and stops accepting new ones.
    await app.stop(false)
    await artifactPoller.stop()
    await opened.database.close()
    await opened.localServer?.stop()
    clearTimeout(timer)
    log.info('stopped')
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
}

await main()
