/**
 * Applies the SQL migrations (built in, or MIGRATIONS_DIR's; see migrations.ts) with drizzle's
 * migrator. Run at start unless MIGRATE_ON_START=false, or on its own with `bun run db:migrate`.
 */
import type { MigrationMeta } from 'drizzle-orm/migrator'
import type { MySqlDialect, MySqlSession } from 'drizzle-orm/mysql-core'
import mysql from 'mysql2/promise'
import type { Database } from './client'
import { migrationsFrom } from './migrations'

/**
 * drizzle's `migrate()` of both drivers is `readMigrationFiles(folder)` then this dialect call; calling
 * it directly lets the migrations come from the binary instead of a folder. The two members are
 * public at run time but left out of drizzle's typings.
 */
interface Migratable {
  dialect: Pick<MySqlDialect, 'migrate'>
  session: MySqlSession
}

export async function runMigrations(database: Database, migrationsDir?: string) {
  const migrations: MigrationMeta[] = migrationsFrom(migrationsDir)
  const { dialect, session } = database.db as unknown as Migratable
  await dialect.migrate(migrations, session, { migrationsFolder: migrationsDir ?? '(built in)' })
}

/**
 * Runs `migrate` while holding a server-wide named lock (`GET_LOCK`) for this database, on a
 * connection of its own: replicas that start together migrate one after another, and each one that
 * waited finds the schema up to date (drizzle skips applied migrations). The lock goes with the
 * session, so a replica that dies mid-migration frees it. Answers how long it waited, in ms.
 * PlanetScale (https://) has no session locks over HTTP: run migrations there as one job.
 */
export async function withMigrationLock(url: string, timeoutMs: number, migrate: () => Promise<void>): Promise<number> {
  const parsed = new URL(url)
  if (parsed.protocol !== 'mysql:') {
    await migrate()
    return 0
  }
  const name = `darwin_ml_serve.migrate.${decodeURIComponent(parsed.pathname.replace(/^\//, ''))}`.slice(0, 64)
  const connection = await mysql.createConnection({ uri: url, connectTimeout: 5_000 })
  try {
    const started = performance.now()
    const [rows] = await connection.query({ sql: 'SELECT GET_LOCK(?, ?) AS locked', timeout: timeoutMs + 5_000 }, [name, Math.ceil(timeoutMs / 1000)])
    const locked = (rows as { locked: number | null }[])[0]?.locked
    if (locked !== 1) throw new Error(`another replica has been migrating this database for over ${Math.ceil(timeoutMs / 1000)} s (lock ${name}); raise DB_MIGRATION_TIMEOUT_MS or check it`)
    const waitedMs = Math.round(performance.now() - started)
    try {
      await migrate()
    } finally {
      await connection.query('SELECT RELEASE_LOCK(?)', [name]).catch(() => undefined)
    }
    return waitedMs
  } finally {
    await connection.end().catch(() => undefined)
  }
}

/**
 * Creates the database named in a mysql:// URL when it does not exist yet, as utf8mb4
 * (MariaDB's default charset is latin1, which would mangle names and descriptions).
 */
export async function ensureDatabaseExists(url: string) {
  const parsed = new URL(url)
  const name = decodeURIComponent(parsed.pathname.replace(/^\//, ''))
  if (parsed.protocol !== 'mysql:' || name === '') return
  if (!/^[A-Za-z0-9_$-]{1,64}$/.test(name)) throw new Error(`database name "${name}" is not a plain identifier`)
  parsed.pathname = '/'
  const connection = await mysql.createConnection({ uri: parsed.toString(), connectTimeout: 5_000 })
  try {
    await connection.query(
      `CREATE DATABASE IF NOT EXISTS \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
    )
  } finally {
    await connection.end()
  }
}
