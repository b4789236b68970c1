/**
 * The one place that knows which database driver is in use. Services receive a `Db` and never see
 * the driver: `mysql://` URLs go over TCP through Bun's built-in SQL client (./bun-sql.ts) or mysql2
 * (DB_DRIVER; compared by bench/db-driver.ts and bench/api-drivers.ts, figures in the README), `https://`
 * URLs go to PlanetScale's HTTP endpoint through @planetscale/database.
 */
import { Client as PlanetScaleClient } from '@planetscale/database'
import { sql } from 'drizzle-orm'
import type { MySqlDatabase, MySqlQueryResultHKT, PreparedQueryHKTBase } from 'drizzle-orm/mysql-core'
import { withReplicas } from 'drizzle-orm/mysql-core'
import { drizzle as drizzleMysql2 } from 'drizzle-orm/mysql2'
import { drizzle as drizzlePlanetScale } from 'drizzle-orm/planetscale-serverless'
import { SpanKind } from '@opentelemetry/api'
import mysql from 'mysql2/promise'
import { DEFAULT_MYSQL_DRIVER, type MysqlDriverName } from '../config'
import { withSpan } from '../lib/telemetry'
import { BunSqlPool, drizzleBunSql, statementTimedOut as bunSqlStatementTimedOut } from './bun-sql'
import * as schema from './schema'

export type Schema = typeof schema
export type Db = MySqlDatabase<MySqlQueryResultHKT, PreparedQueryHKTBase, Schema>

/** A transaction handed to `db.transaction(async (tx) => …)`. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]
/** Anything that runs queries: the database itself or a transaction. */
export type Executor = Db | Tx

export type DriverName = MysqlDriverName | 'planetscale'

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
  /** Client-side bound on each statement (DB_STATEMENT_TIMEOUT_MS); default 5 s. */
  statementTimeoutMs?: number
  /** The driver of mysql:// URLs (DB_DRIVER); default {@link DEFAULT_MYSQL_DRIVER}. */
  driver?: MysqlDriverName
}

export function driverFor(url: string, mysqlDriver: MysqlDriverName = DEFAULT_MYSQL_DRIVER): DriverName {
  return new URL(url).protocol === 'https:' ? 'planetscale' : mysqlDriver
}

/** Readiness must answer within 2 s even when the database hangs. */
const PING_TIMEOUT_MS = 1_500

function mysqlPool(url: string, poolSize: number, statementTimeoutMs: number) {
  return mysql.createPool({
    uri: url,
    connectionLimit: poolSize,
    // Drizzle writes DATETIME values as UTC; the pool must read them back the same way.
    timezone: 'Z',
    charset: 'utf8mb4_unicode_ci',
    // A server that accepts connections but never greets must not hold a request longer than a statement.
    connectTimeout: Math.min(5_000, Math.max(1_000, statementTimeoutMs)),
    enableKeepAlive: true,
    waitForConnections: true,
    // Fail fast when the pool is exhausted by a dead server rather than queueing forever.
    queueLimit: poolSize * 50,
  })
}

const STATEMENT_TIMEOUT = 'PROTOCOL_SEQUENCE_TIMEOUT'

/** What every statement on a discarded connection (and the one that timed out) rejects with. */
function statementTimedOut(timeoutMs: number): Error {
  return Object.assign(new Error(`the database did not answer within ${timeoutMs} ms; the connection was discarded`), { code: STATEMENT_TIMEOUT })
}

/** mysql2's query/execute arguments with a `timeout` added (a caller's own timeout wins). */
function withStatementTimeout(args: unknown[], timeoutMs: number): unknown[] {
  const [first, ...rest] = args
  const options = typeof first === 'string' ? { sql: first } : (first as Record<string, unknown>)
  return [{ ...options, timeout: (options.timeout as number | undefined) ?? timeoutMs }, ...rest]
}

function tracedCall<T>(args: unknown[], call: () => Promise<T>): Promise<T> {
  const first = args[0]
  const text = typeof first === 'string' ? first : ((first as { sql?: string } | undefined)?.sql ?? '')
  const operation = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? 'QUERY'
  const attributes = { 'db.system.name': 'mysql', 'db.operation.name': operation, 'db.query.text': text }
  return withSpan(operation, attributes, call, SpanKind.CLIENT)
}

type PromisePool = ReturnType<typeof mysql.createPool>
type PromiseConnection = Awaited<ReturnType<PromisePool['getConnection']>>

/**
 * A pooled connection whose statements are bounded in time and traced. mysql2's query timeout only
 * fails the promise: the connection still waits for the server's answer and would stall every later
 * statement on it, so a connection that timed out is destroyed (and leaves the pool), and whatever
 * drizzle sends on it next (the ROLLBACK of its transaction) fails at once with the same error.
 */
function guardedConnection(connection: PromiseConnection, timeoutMs: number): PromiseConnection {
  let discarded = false
  return new Proxy(connection, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object)
      if (typeof value !== 'function') return value
      if (property === 'query' || property === 'execute') {
        return (...args: unknown[]) =>
          tracedCall(args, async () => {
            if (discarded) throw statementTimedOut(timeoutMs)
            try {
              return await value.apply(object, withStatementTimeout(args, timeoutMs))
            } catch (error) {
              if ((error as { code?: unknown }).code === STATEMENT_TIMEOUT) {
                discarded = true
                object.destroy()
                throw statementTimedOut(timeoutMs)
              }
              throw error
            }
          })
      }
      if (property === 'release') return () => (discarded ? undefined : object.release())
      return value.bind(object)
    },
  })
}

/**
 * The pool as drizzle sees it: every statement (its own query/execute, and those of the connections
 * it hands out for transactions) runs on a guarded connection, so none can hold a request, the pool
 * or a worker past `timeoutMs`.
 */
function guardedPool(pool: PromisePool, timeoutMs: number): PromisePool {
  // Waiting for a free connection is bounded too: while the server hangs, every connection is busy
  // until its statement times out, and a queue of requests would otherwise wait one round after another.
  const acquire = () =>
    new Promise<PromiseConnection>((resolve, reject) => {
      let expired = false
      const timer = setTimeout(() => {
        expired = true
        reject(statementTimedOut(timeoutMs))
      }, timeoutMs)
      pool.getConnection().then(
        (connection) => {
          clearTimeout(timer)
          if (expired) connection.release()
          else resolve(guardedConnection(connection, timeoutMs))
        },
        (error: unknown) => {
          clearTimeout(timer)
          reject(error)
        },
      )
    })
  return new Proxy(pool, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object)
      if (typeof value !== 'function') return value
      if (property === 'query' || property === 'execute') {
        return async (...args: unknown[]) => {
          const connection = await acquire()
          try {
            return await (connection[property] as (...a: unknown[]) => Promise<unknown>)(...args)
          } finally {
            connection.release()
          }
        }
      }
      if (property === 'getConnection') return acquire
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

  const timeoutMs = options.statementTimeoutMs ?? 5_000
  if ((options.driver ?? DEFAULT_MYSQL_DRIVER) === 'bun-sql') return connectBunSql(options.url, options.readUrl, poolSize, timeoutMs)
  const primaryPool = guardedPool(mysqlPool(options.url, poolSize, timeoutMs), timeoutMs)
  const primary = drizzleMysql2({ client: primaryPool, schema, mode: 'default' })
  const readPool = options.readUrl ? guardedPool(mysqlPool(options.readUrl, poolSize, timeoutMs), timeoutMs) : undefined
  const db = (readPool
    ? withReplicas(primary, [drizzleMysql2({ client: readPool, schema, mode: 'default' })])
    : primary) as unknown as Db
  return {
    db,
    driver: 'mysql2',
    // Bounded by a timer too: acquiring a connection from a pool whose server hangs waits for connectTimeout.
    ping: async () => {
      const limitMs = Math.min(timeoutMs, PING_TIMEOUT_MS)
      let timer: ReturnType<typeof setTimeout> | undefined
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(statementTimedOut(limitMs)), limitMs)
      })
      try {
        await Promise.race([primaryPool.query({ sql: 'select 1', timeout: limitMs }), expired])
      } finally {
        clearTimeout(timer)
      }
    },
    // Closing must not throw because the server is already gone (shutdown during an outage).
    close: async () => void (await Promise.allSettled([primaryPool.end(), readPool?.end()])),
  }
}

function connectBunSql(url: string, readUrl: string | undefined, poolSize: number, timeoutMs: number): Database {
  const pool = (url: string) =>
    new BunSqlPool({
      url,
      poolSize,
      statementTimeoutMs: timeoutMs,
      connectTimeoutMs: Math.min(5_000, Math.max(1_000, timeoutMs)),
      trace: (text, run) => tracedCall([text], run),
    })
  const primaryPool = pool(url)
  const primary = drizzleBunSql(primaryPool, { schema })
  const readPool = readUrl ? pool(readUrl) : undefined
  const db = (readPool ? withReplicas(primary, [drizzleBunSql(readPool, { schema })]) : primary) as unknown as Db
  return {
    db,
    driver: 'bun-sql',
    // Bounded by a timer too: opening a connection to a server that hangs waits for the connect timeout.
    ping: async () => {
      const limitMs = Math.min(timeoutMs, PING_TIMEOUT_MS)
      let timer: ReturnType<typeof setTimeout> | undefined
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(bunSqlStatementTimedOut(limitMs)), limitMs)
      })
      try {
        await Promise.race([primaryPool.query('select 1', [], true), expired])
      } finally {
        clearTimeout(timer)
      }
    },
    close: async () => void (await Promise.allSettled([primaryPool.close(), readPool?.close()])),
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
