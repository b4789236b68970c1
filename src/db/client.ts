/**
 * The one place that knows which database driver is in use. Services receive a `Db` and never see
 * the driver: `mysql://` URLs go over TCP through mysql2 (measured faster than Bun SQL here, see
 * README), `https://` URLs go to PlanetScale's HTTP endpoint through @planetscale/database.
 */
import { Client as PlanetScaleClient } from '@planetscale/database'
import { sql } from 'drizzle-orm'
import type { MySqlDatabase, MySqlQueryResultHKT, PreparedQueryHKTBase } from 'drizzle-orm/mysql-core'
import { withReplicas } from 'drizzle-orm/mysql-core'
import { drizzle as drizzleMysql2 } from 'drizzle-orm/mysql2'
import { drizzle as drizzlePlanetScale } from 'drizzle-orm/planetscale-serverless'
import mysql from 'mysql2/promise'
import * as schema from './schema'

export type Schema = typeof schema
export type Db = MySqlDatabase<MySqlQueryResultHKT, PreparedQueryHKTBase, Schema>

/** A transaction handed to `db.transaction(async (tx) => …)`. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]
/** Anything that runs queries: the database itself or a transaction. */
export type Executor = Db | Tx

export type DriverName = 'mysql2' | 'planetscale'

export interface Database {
  db: Db
  driver: DriverName
  /** One round trip to the primary; throws when it cannot be reached. */
  ping(): Promise<void>
  close(): Promise<void>
}

export interface DatabaseOptions {
  /** mysql://user:pass@host:port/db or https://user:pass@host (PlanetScale). */
  url: string
  /** A replica serving reads (same credentials and database as `url`), for mysql:// only. */
  readUrl?: string
  poolSize?: number
}

export function driverFor(url: string): DriverName {
  return new URL(url).protocol === 'https:' ? 'planetscale' : 'mysql2'
}

function mysqlPool(url: string, poolSize: number) {
  return mysql.createPool({
    uri: url,
    connectionLimit: poolSize,
    // Drizzle writes DATETIME values as UTC; the pool must read them back the same way.
    timezone: 'Z',
    charset: 'utf8mb4_unicode_ci',
    connectTimeout: 5_000,
    enableKeepAlive: true,
    waitForConnections: true,
    // Fail fast when the pool is exhausted by a dead server rather than queueing forever.
    queueLimit: poolSize * 50,
  })
}

export function connectDatabase(options: DatabaseOptions): Database {
  const poolSize = options.poolSize ?? 10
  if (driverFor(options.url) === 'planetscale') {
    const client = new PlanetScaleClient({ url: options.url })
    const db = drizzlePlanetScale({ client, schema }) as unknown as Db
    return {
      db,
      driver: 'planetscale',
      ping: async () => void (await db.execute(sql`select 1`)),
      close: async () => {},
    }
  }

  const primaryPool = mysqlPool(options.url, poolSize)
  const primary = drizzleMysql2({ client: primaryPool, schema, mode: 'default' })
  const readPool = options.readUrl ? mysqlPool(options.readUrl, poolSize) : undefined
  const db = (readPool
    ? withReplicas(primary, [drizzleMysql2({ client: readPool, schema, mode: 'default' })])
    : primary) as unknown as Db
  return {
    db,
    driver: 'mysql2',
    ping: async () => void (await primaryPool.query('select 1')),
    // Closing must not throw because the server is already gone (shutdown during an outage).
    close: async () => void (await Promise.allSettled([primaryPool.end(), readPool?.end()])),
  }
}

/** Builds the mysql:// URL from the MYSQL_* settings, for when DATABASE_URL is not set. */
export function urlFromParts(parts: { host: string; port: number; username: string; password: string; name: string }) {
  const url = new URL('mysql://localhost')
  url.hostname = parts.host
  url.port = String(parts.port)
  url.username = encodeURIComponent(parts.username)
  url.password = encodeURIComponent(parts.password)
  url.pathname = `/${parts.name}`
  return url.toString()
}

/** The same URL pointing at another host (the read replica of MYSQL_SLAVE_HOST). */
export function withHost(url: string, host: string) {
  const copy = new URL(url)
  copy.hostname = host
  return copy.toString()
}

/** Removes the password from a URL so it can be printed. */
export function redactUrl(url: string) {
  const copy = new URL(url)
  if (copy.password) copy.password = '***'
  return copy.toString()
}
