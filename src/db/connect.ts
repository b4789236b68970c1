/**
 * From configuration to a migrated, connected database: DATABASE_URL, else the MYSQL_* settings,
 * else (dev only, nothing named) a local server provisioned under .data/.
 */
import { join } from 'node:path'
import type { Config } from '../config'
import type { Logger } from '../lib/logger'
import { connectDatabase, type Database, redactUrl, urlFromParts, withHost } from './client'
import { type LocalServer, startLocalServer } from './local-server'
import { ensureDatabaseExists, runMigrations, withMigrationLock } from './migrate'

export interface OpenedDatabase {
  database: Database
  url: string
  localServer?: LocalServer
}

export async function openDatabase(config: Config, log: Logger, options: { allowLocal: boolean }): Promise<OpenedDatabase> {
  const settings = config.database
  let url = settings.url
  let localServer: LocalServer | undefined
  if (!url && settings.provisionLocal && options.allowLocal) {
    localServer = await startLocalServer({ dataDir: join(process.cwd(), '.data', 'mysql') })
    url = `${localServer.url}${settings.name}`
    log.info('using a local database server (no DATABASE_URL or MYSQL_HOST set)', {
      kind: localServer.kind,
      database_url: redactUrl(url),
    })
  }
  url ??= urlFromParts(settings)
  const readUrl = settings.readHost && !settings.url ? withHost(url, settings.readHost) : undefined
  if (settings.migrateOnStart) {
    await ensureDatabaseExists(url)
    // Its own pool: migrations get the longer statement bound, and one connection is all they need.
    const migrating = connectDatabase({ url, driver: settings.driver, poolSize: 1, statementTimeoutMs: settings.migrationTimeoutMs })
    try {
      const waitedMs = await withMigrationLock(url, settings.migrationTimeoutMs, () => runMigrations(migrating, settings.migrationsDir))
      log.info('migrations applied', { database_url: redactUrl(url), waited_for_another_replica_ms: waitedMs })
    } finally {
      await migrating.close()
    }
  }
  const database = connectDatabase({ url, readUrl, driver: settings.driver, poolSize: settings.poolSize, statementTimeoutMs: settings.statementTimeoutMs })
  return { database, url, localServer }
}
