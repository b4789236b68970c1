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
