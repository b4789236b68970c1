/** `bun run db:migrate`: applies pending migrations to the configured database, then exits. */
import { ConfigError, loadConfig } from '../config'
import { createLogger, describeError } from '../lib/logger'
import { openDatabase } from './connect'

try {
  const config = loadConfig({ ...process.env, MIGRATE_ON_START: 'true' })
  const log = createLogger({ level: config.logLevel })
  const opened = await openDatabase(config, log, { allowLocal: config.isLocal })
  await opened.database.close()
  await opened.localServer?.stop()
} catch (error) {
  console.error(error instanceof ConfigError ? `invalid configuration: ${error.message}` : `migration failed: ${JSON.stringify(describeError(error))}`)
  process.exit(1)
}
