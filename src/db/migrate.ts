/**
 * Applies the SQL migrations in drizzle/ (written by `drizzle-kit generate`) with drizzle's migrate().
 * Run at start unless MIGRATE_ON_START=false, or on its own with `bun run db:migrate`.
 */
import { migrate as migrateMysql2 } from 'drizzle-orm/mysql2/migrator'
import { migrate as migratePlanetScale } from 'drizzle-orm/planetscale-serverless/migrator'
import mysql from 'mysql2/promise'
import { MIGRATIONS_DIR } from '../lib/paths'
import type { Database } from './client'

export async function runMigrations(database: Database, migrationsFolder = MIGRATIONS_DIR) {
  // Both migrators only need the MySqlDatabase surface; the cast picks the overload per driver.
  if (database.driver === 'planetscale') {
    await migratePlanetScale(database.db as never, { migrationsFolder })
  } else {
    await migrateMysql2(database.db as never, { migrationsFolder })
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
