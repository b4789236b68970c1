/**
 * The one place that knows which database driver is in use. Services receive a `Db` and never see
 * the driver: `mysql://` URLs go over TCP through mysql2 (compared with Bun SQL by bench/db-driver.ts,
 * figures in the README), `https://` URLs go to PlanetScale's HTTP endpoint through @planetscale/database.
 */
import { Client as PlanetScaleClient } from '@planetscale/database'
import { sql } from 'drizzle-orm'
import type { MySqlDatabase, MySqlQueryResultHKT, PreparedQueryHKTBase } from 'drizzle-orm/mysql-core'
import { withReplicas } from 'drizzle-orm/mysql-core'
import { drizzle as drizzleMysql2 } from 'drizzle-orm/mysql2'
import { drizzle as drizzlePlanetScale } from 'drizzle-orm/planetscale-serverless'
import { SpanKind } from '@opentelemetry/api'
import mysql from 'mysql2/promise'
import { withSpan } from '../lib/telemetry'
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

/**
 * Every statement in a CLIENT span (a no-op when telemetry is off): the pool's query/execute and
 * those of connections it hands out, which is where drizzle runs transactions. Wrapping the driver
 * object rather than drizzle's internals keeps this independent of drizzle's private classes.
 */
function traced<T extends object>(target: T): T {
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object)
      if (typeof value !== 'function') return value
      if (property === 'query' || property === 'execute') {
        return (...args: unknown[]) => {
          const first = args[0]
          const text = typeof first === 'string' ? first : ((first as { sql?: string } | undefined)?.sql ?? '')
          const operation = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? 'QUERY'
          const attributes = { 'db.system.name': 'mysql', 'db.operation.name': operation, 'db.query.text': text }
          return withSpan(operation, attributes, () => value.apply(object, args), SpanKind.CLIENT)
        }
      }
      if (property === 'getConnection') {
        return async (...args: unknown[]) => traced(await value.apply(object, args))
      }
      return value.bind(object)
    },
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

  const primaryPool = traced(mysqlPool(options.url, poolSize))
  const primary = drizzleMysql2({ client: primaryPool, schema, mode: 'default' })
  const readPool = options.readUrl ? traced(mysqlPool(options.readUrl, poolSize)) : undefined
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

/** Rows an UPDATE/DELETE changed: mysql2 answers `[ResultSetHeader, …]`, PlanetScale `{ rowsAffected }`. */
export function affectedRows(result: unknown): number {
  const header = (Array.isArray(result) ? result[0] : result) as { affectedRows?: unknown; rowsAffected?: unknown } | undefined
  return Number(header?.affectedRows ?? header?.rowsAffected ?? 0)
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
