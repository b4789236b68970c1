/**
 * A drizzle mysql-core driver over Bun's built-in SQL client (`new SQL('mysql://…')`), so the app
 * keeps one data-access style (drizzle's MySQL query builder, types and migrator) on a driver that
 * skips mysql2's trips through Bun's node compatibility layer. drizzle-orm/bun-sql speaks PostgreSQL
 * only; this is the MySQL counterpart, modelled on drizzle-orm/mysql2's session.
 *
 * What it answers is what the rest of the app reads from mysql2:
 * - rows for drizzle as arrays, DATETIME/TIMESTAMP/DATE as the server's text (drizzle's datetime
 *   column parses `YYYY-MM-DD HH:MM:SS.fff` as UTC, as mysql2's typeCast in drizzle's session does);
 * - `db.execute()` as `[rows, columns]` for a result set and `[ResultSetHeader]` for a write
 *   (`affectedRows` counts matched rows, as mysql2's FOUND_ROWS flag does);
 * - errors with mysql2's `code` names (`ER_DUP_ENTRY`, `PROTOCOL_CONNECTION_LOST`, …), `errno` and
 *   `fatal`, so src/lib/errors.ts needs no second vocabulary.
 *
 * Statements are bounded in time. Bun cannot cancel a MySQL statement it has sent, so the pool here
 * holds connections reserved from Bun's pool and hands each statement one of them: a statement that
 * outlives its bound gets its connection closed (the server drops what it had not committed), as
 * the mysql2 driver's guarded pool does.
 */
import { type ReservedSQL, SQL } from 'bun'
import { NoopCache } from 'drizzle-orm/cache/core'
import { Column } from 'drizzle-orm/column'
import { entityKind, is } from 'drizzle-orm/entity'
import type { Logger } from 'drizzle-orm/logger'
import { NoopLogger } from 'drizzle-orm/logger'
import {
  MySqlDatabase,
  MySqlDialect,
  MySqlPreparedQuery,
  type MySqlPreparedQueryConfig,
  type MySqlPreparedQueryHKT,
  type MySqlQueryResultHKT,
  MySqlSession,
  MySqlTransaction,
  type MySqlTransactionConfig,
  type SelectedFieldsOrdered,
} from 'drizzle-orm/mysql-core'
import {
  createTableRelationsHelpers,
  extractTablesRelationalConfig,
  type ExtractTablesWithRelations,
  type RelationalSchemaConfig,
  type TablesRelationalConfig,
} from 'drizzle-orm/relations'
import { fillPlaceholders, type Query, type SQL as DrizzleSql, sql } from 'drizzle-orm/sql/sql'
import * as drizzleUtils from 'drizzle-orm/utils'

/**
 * drizzle's own drivers build on members its typings mark internal (stripped from the .d.ts);
 * these are their run-time signatures in drizzle-orm 0.45.
 */
const { mapResultRow } = drizzleUtils as unknown as {
  mapResultRow<T>(columns: SelectedFieldsOrdered, row: unknown[], joinsNotNullableMap: Record<string, boolean> | undefined): T
}
interface PreparedQueryInternals {
  queryWithCache<T>(queryString: string, params: unknown[], query: () => Promise<T>): Promise<T>
  joinsNotNullableMap: Record<string, boolean> | undefined
}
/** The column attributes `$returningId()` reads. */
interface ColumnInternals {
  primary: boolean
  autoIncrement?: boolean
  defaultFn?: unknown
}

// ---------------------------------------------------------------------------------------------
// Errors: one vocabulary (mysql2's) for src/lib/errors.ts
// ---------------------------------------------------------------------------------------------

/** The server's error numbers the app (or its readers of logs) tells apart, by mysql2's names. */
const SERVER_ERROR_NAMES: Record<number, string> = {
  1040: 'ER_CON_COUNT_ERROR',
  1045: 'ER_ACCESS_DENIED_ERROR',
  1049: 'ER_BAD_DB_ERROR',
  1050: 'ER_TABLE_EXISTS_ERROR',
  1053: 'ER_SERVER_SHUTDOWN',
  1062: 'ER_DUP_ENTRY',
  1064: 'ER_PARSE_ERROR',
  1146: 'ER_NO_SUCH_TABLE',
  1205: 'ER_LOCK_WAIT_TIMEOUT',
  1213: 'ER_LOCK_DEADLOCK',
  1317: 'ER_QUERY_INTERRUPTED',
  1451: 'ER_ROW_IS_REFERENCED_2',
  1452: 'ER_NO_REFERENCED_ROW_2',
}

/** Bun's own codes for a connection that failed or was lost, as mysql2 names the same events. */
const CONNECTION_ERROR_NAMES: Record<string, string> = {
  ERR_MYSQL_CONNECTION_REFUSED: 'ECONNREFUSED',
  ERR_MYSQL_CONNECTION_FAILED: 'ECONNREFUSED',
  ERR_MYSQL_CONNECTION_TIMEOUT: 'ETIMEDOUT',
  ERR_MYSQL_CONNECTION_CLOSED: 'PROTOCOL_CONNECTION_LOST',
  ERR_MYSQL_IDLE_TIMEOUT: 'PROTOCOL_CONNECTION_LOST',
  ERR_MYSQL_LIFETIME_TIMEOUT: 'PROTOCOL_CONNECTION_LOST',
  ERR_MYSQL_AUTHENTICATION_FAILED: 'ER_ACCESS_DENIED_ERROR',
}

/** What a statement that outlived its bound (and everything after it on its connection) rejects with. */
export const STATEMENT_TIMEOUT = 'PROTOCOL_SEQUENCE_TIMEOUT'

/**
 * A database error in mysql2's shape. Bun's error is kept as `driverError`, not `cause`: the
 * predicates of errors.ts read the innermost `cause`, which must be this one.
 */
export class BunSqlDatabaseError extends Error {
  override readonly name = 'BunSqlDatabaseError'
  constructor(
    message: string,
    readonly code: string,
    /** The connection cannot be used any more (mysql2's `fatal`). */
    readonly fatal: boolean,
    readonly errno?: number,
    readonly sqlState?: string,
    readonly driverError?: unknown,
  ) {
    super(message)
  }
}

export function statementTimedOut(timeoutMs: number): BunSqlDatabaseError {
  return new BunSqlDatabaseError(`the database did not answer within ${timeoutMs} ms; the connection was discarded`, STATEMENT_TIMEOUT, true)
}

/** Bun's SQL.MySQLError (or anything else a connection throws) in mysql2's shape. */
export function normaliseError(error: unknown): unknown {
  if (error instanceof BunSqlDatabaseError || !(error instanceof SQL.SQLError)) return error
  const { code, errno, sqlState } = error as Partial<InstanceType<typeof SQL.MySQLError>>
  const connectionName = code === undefined ? undefined : CONNECTION_ERROR_NAMES[code]
  if (connectionName) return new BunSqlDatabaseError(error.message, connectionName, true, errno, sqlState, error)
  const serverName = errno === undefined ? undefined : SERVER_ERROR_NAMES[errno]
  return new BunSqlDatabaseError(error.message, serverName ?? code ?? 'ER_UNKNOWN', false, errno, sqlState, error)
}

// ---------------------------------------------------------------------------------------------
// The pool: connections reserved from Bun's pool, each statement bounded in time
// ---------------------------------------------------------------------------------------------

/** The array a Bun SQL query resolves to: rows, with the statement's metadata beside them. */
export type BunResult = unknown[] & SQL.ResultMetadata

export interface BunSqlPoolOptions {
  url: string
  poolSize: number
  statementTimeoutMs: number
  /** Bound on opening a connection, in ms. */
  connectTimeoutMs: number
  /** How long a free connection may idle and still be reused; default 30 s. */
  idleMs?: number
  /** Wraps each statement (a tracing span). */
  trace?: (text: string, run: () => Promise<BunResult>) => Promise<BunResult>
}

/**
 * A free connection idle longer than this is replaced rather than reused: the server (wait_timeout),
 * a proxy or a NAT may have closed it without Bun noticing, and the statement sent on it would fail.
 */
const DEFAULT_IDLE_MS = 30_000

/** One reserved connection: the deadline of the statement it runs, or since when it is free. */
interface Slot {
  connection: ReservedSQL
  deadline: number
  idleSince: number
  abort?: (error: Error) => void
  discarded: boolean
}

/**
 * A fixed set of reserved connections. A free slot is taken for each statement (or for a whole
 * transaction) and given back after; a sweep closes the connection of any statement past its
 * deadline. One interval for all statements instead of a timer each: a timer per statement added
 * about a fifth to the driver's CPU per query here.
 */
export class BunSqlPool {
  private readonly client: SQL
  private readonly free: Slot[] = []
  private readonly busy = new Set<Slot>()
  private readonly waiters: { resolve: (slot: Slot) => void; reject: (error: Error) => void }[] = []
  private opened = 0
  private sweeper: ReturnType<typeof setInterval> | undefined
  private closed = false

  constructor(readonly options: BunSqlPoolOptions) {
    const url = new URL(options.url)
    this.client = new SQL({
      url: options.url,
      adapter: 'mysql',
      // MYSQL_DATABASE in the environment would otherwise win over the URL's database.
      database: decodeURIComponent(url.pathname.replace(/^\//, '')) || undefined,
      max: options.poolSize,
      // mysql2 sets CLIENT_FOUND_ROWS: an UPDATE that matched a row counts it even when nothing changed.
      foundRows: true,
      connectionTimeout: Math.max(1, Math.ceil(options.connectTimeoutMs / 1000)),
    })
  }

  /** A free connection, within the statement bound: while the server hangs every connection is busy. */
  async acquire(): Promise<Slot> {
    if (this.closed) throw new BunSqlDatabaseError('the database pool is closed', 'PROTOCOL_CONNECTION_LOST', true)
    const oldest = performance.now() - (this.options.idleMs ?? DEFAULT_IDLE_MS)
    let slot = this.free.pop()
    while (slot && slot.idleSince < oldest) {
      this.retire(slot)
      slot = this.free.pop()
    }
    if (slot) return slot
    if (this.opened < this.options.poolSize) return this.open()
    return new Promise<Slot>((resolve, reject) => {
      const waiter = {
        resolve: (slot: Slot) => {
          clearTimeout(timer)
          resolve(slot)
        },
        reject,
      }
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        reject(statementTimedOut(this.options.statementTimeoutMs))
      }, this.options.statementTimeoutMs)
      this.waiters.push(waiter)
    })
  }

  private async open(): Promise<Slot> {
    this.opened++
    try {
      const connection = await this.client.reserve({ signal: AbortSignal.timeout(this.options.statementTimeoutMs) })
      return { connection, deadline: 0, idleSince: 0, discarded: false }
    } catch (error) {
      this.opened--
      this.handOn()
      if (error instanceof DOMException) throw statementTimedOut(this.options.statementTimeoutMs)
      throw normaliseError(error)
    }
  }

  /** Gives a slot back, or drops it when its connection is discarded (another one opens on demand). */
  release(slot: Slot) {
    if (slot.discarded) return
    const waiter = this.waiters.shift()
    if (waiter) return waiter.resolve(slot)
    slot.idleSince = performance.now()
    this.free.push(slot)
  }

  /** After a connection was dropped, a waiter may open its replacement. */
  private handOn() {
    const waiter = this.waiters.shift()
    if (waiter) this.open().then(waiter.resolve, waiter.reject)
  }

  private discard(slot: Slot) {
    if (slot.discarded) return
    this.busy.delete(slot)
    this.retire(slot)
    this.handOn()
  }

  /** Closes a connection for good (not releasing it): the server rolls back what it had not committed. */
  private retire(slot: Slot) {
    slot.discarded = true
    this.opened--
    slot.connection.close().catch(() => undefined)
  }

  /** Runs one statement on a slot, bounded by the statement timeout; `arrays` asks for rows as arrays. */
  run(slot: Slot, text: string, params: unknown[], arrays: boolean): Promise<BunResult> {
    const trace = this.options.trace
    return trace ? trace(text, () => this.runBounded(slot, text, params, arrays)) : this.runBounded(slot, text, params, arrays)
  }

  private async runBounded(slot: Slot, text: string, params: unknown[], arrays: boolean): Promise<BunResult> {
    if (slot.discarded) throw statementTimedOut(this.options.statementTimeoutMs)
    const query = slot.connection.unsafe(text, params)
    if (arrays) query.values()
    slot.deadline = performance.now() + this.options.statementTimeoutMs
    this.busy.add(slot)
    this.sweeper ??= this.startSweeper()
    try {
      return await new Promise<BunResult>((resolve, reject) => {
        slot.abort = reject
        ;(query as Promise<BunResult>).then(resolve, reject)
      })
    } catch (error) {
      const normalised = normaliseError(error)
      if ((normalised as { fatal?: unknown }).fatal === true) this.discard(slot)
      throw normalised
    } finally {
      slot.abort = undefined
      this.busy.delete(slot)
    }
  }

  private startSweeper() {
    const every = Math.min(250, Math.max(10, Math.floor(this.options.statementTimeoutMs / 10)))
    const sweeper = setInterval(() => {
      const now = performance.now()
      for (const slot of this.busy) {
        if (slot.deadline > now) continue
        const abort = slot.abort
        this.discard(slot)
        abort?.(statementTimedOut(this.options.statementTimeoutMs))
      }
    }, every)
    // The sweep must not keep a process alive that has nothing else to do.
    sweeper.unref()
    return sweeper
  }

  /** One statement on any free connection. */
  async query(text: string, params: unknown[], arrays: boolean): Promise<BunResult> {
    const slot = await this.acquire()
    try {
      return await this.run(slot, text, params, arrays)
    } finally {
      this.release(slot)
    }
  }

  async close() {
    this.closed = true
    clearInterval(this.sweeper)
    for (const waiter of this.waiters.splice(0)) waiter.reject(new BunSqlDatabaseError('the database pool is closed', 'PROTOCOL_CONNECTION_LOST', true))
    const slots = [...this.free.splice(0), ...this.busy]
    await Promise.allSettled(slots.map((slot) => slot.connection.close()))
    await this.client.close({ timeout: 0 })
  }
}

/** Runs statements: the pool (a connection each) or one connection held by a transaction. */
interface Runner {
  query(text: string, params: unknown[], arrays: boolean): Promise<BunResult>
}

/** A transaction's connection: every statement on the same slot, each one bounded. */
class PinnedRunner implements Runner {
  constructor(
    private readonly pool: BunSqlPool,
    private readonly slot: Slot,
  ) {}
  query(text: string, params: unknown[], arrays: boolean) {
    return this.pool.run(this.slot, text, params, arrays)
  }
}

// ---------------------------------------------------------------------------------------------
// Results in the shapes drizzle's mysql-core and the app read
// ---------------------------------------------------------------------------------------------

/** mysql2's ResultSetHeader, as far as drizzle and the app read it. */
export interface BunSqlResultHeader {
  affectedRows: number
  insertId: number
}

/** DATETIME (12), TIMESTAMP (7), DATE (10) and NEWDATE (14): Bun answers Date objects, drizzle parses text. */
const DATE_TYPES = new Set([7, 10, 12, 14])

/** The server's text of a DATE/DATETIME/TIMESTAMP (Bun reads them as UTC, as the app writes them). */
function dateText(value: Date, type: number): string {
  const iso = value.toISOString()
  return type === 10 || type === 14 ? iso.slice(0, 10) : `${iso.slice(0, 10)} ${iso.slice(11, 23)}`
}

/** Indexes of the date-typed columns of a result, or undefined when it has none (the usual case is cheap). */
function dateColumns(result: BunResult): number[] | undefined {
  let found: number[] | undefined
  const columns = result.columns ?? []
  for (let i = 0; i < columns.length; i++) if (DATE_TYPES.has(columns[i]!.type)) (found ??= []).push(i)
  return found
}

function datesAsText(result: BunResult, asArrays: boolean): void {
  const dates = dateColumns(result)
  if (!dates) return
  const columns = result.columns!
  for (const row of result as Record<string | number, unknown>[]) {
    for (const index of dates) {
      const key = asArrays ? index : columns[index]!.name
      const value = row[key]
      if (value instanceof Date) row[key] = dateText(value, columns[index]!.type)
    }
  }
}

/** mysql2's answer to `query()`: `[rows, fields]` for a result set, `[ResultSetHeader]` for a write. */
function asMysql2Result(result: BunResult): [unknown[], SQL.ResultColumn[]] | [BunSqlResultHeader] {
  if (result.columns && result.columns.length > 0) {
    datesAsText(result, false)
    return [[...result], result.columns]
  }
  return [{ affectedRows: result.affectedRows, insertId: Number(result.lastInsertRowid ?? 0) }]
}

// ---------------------------------------------------------------------------------------------
// drizzle's session, prepared query and transaction
// ---------------------------------------------------------------------------------------------

export interface BunSqlQueryResultHKT extends MySqlQueryResultHKT {
  type: [this['row'][] | BunSqlResultHeader, SQL.ResultColumn[] | undefined]
}

export interface BunSqlPreparedQueryHKT extends MySqlPreparedQueryHKT {
  type: BunSqlPreparedQuery<this['config'] & MySqlPreparedQueryConfig>
}

type CacheArgs = ConstructorParameters<typeof MySqlPreparedQuery>

export class BunSqlPreparedQuery<T extends MySqlPreparedQueryConfig> extends MySqlPreparedQuery<T> {
  static override readonly [entityKind]: string = 'BunSqlPreparedQuery'

  constructor(
    private readonly runner: Runner,
    private readonly queryString: string,
    private readonly params: unknown[],
    private readonly logger: Logger,
    cache: CacheArgs[0],
    queryMetadata: CacheArgs[1],
    cacheConfig: CacheArgs[2],
    private readonly fields: SelectedFieldsOrdered | undefined,
    private readonly customResultMapper?: (rows: unknown[][]) => T['execute'],
    private readonly generatedIds?: Record<string, unknown>[],
    private readonly returningIds?: SelectedFieldsOrdered,
  ) {
    super(cache, queryMetadata, cacheConfig)
  }

  async execute(placeholderValues: Record<string, unknown> = {}): Promise<T['execute']> {
    const params = fillPlaceholders(this.params, placeholderValues)
    this.logger.logQuery(this.queryString, params)
    const { fields, customResultMapper, runner, queryString } = this
    const internals = this as unknown as PreparedQueryInternals
    if (!fields && !customResultMapper) {
      const result = await internals.queryWithCache(queryString, params, () => runner.query(queryString, params, false))
      const answer = asMysql2Result(result)
      return this.returningIds ? this.returnedIds(answer[0] as BunSqlResultHeader) : answer
    }
    const rows = await internals.queryWithCache(queryString, params, () => runner.query(queryString, params, true))
    datesAsText(rows, true)
    if (customResultMapper) return customResultMapper(rows as unknown[][])
    return (rows as unknown[][]).map((row) => mapResultRow(fields!, row, internals.joinsNotNullableMap))
  }

  /** `$returningId()`: the ids an INSERT generated, from its header, as drizzle's mysql2 session derives them. */
  private returnedIds(header: BunSqlResultHeader): Record<string, unknown>[] {
    const returningIds = this.returningIds!
    const key = returningIds[0]!.path[0]!
    const answer: Record<string, unknown>[] = []
    for (let i = 0; i < header.affectedRows; i++) {
      for (const column of returningIds) {
        if (!is(column.field, Column)) continue
        const field = column.field as unknown as ColumnInternals
        if (field.primary && field.autoIncrement) answer.push({ [key]: header.insertId + i })
        if (field.defaultFn && this.generatedIds) answer.push({ [key]: this.generatedIds[i]![key] })
      }
    }
    return answer
  }

  /** Bun SQL has no row stream for MySQL: the rows are read whole, then handed out one by one. */
  async *iterator(placeholderValues: Record<string, unknown> = {}): AsyncGenerator<T['iterator']> {
    const rows = (await this.execute(placeholderValues)) as unknown
    if (!Array.isArray(rows)) return
    // A query without fields answers mysql2's `[rows, fields]`; with fields, the mapped rows.
    const list = !this.fields && !this.customResultMapper ? rows[0] : rows
    if (Array.isArray(list)) yield* list
  }
}

interface SessionOptions {
  logger?: Logger
}

export class BunSqlSession<
  TFullSchema extends Record<string, unknown>,
  TSchema extends TablesRelationalConfig,
> extends MySqlSession<BunSqlQueryResultHKT, BunSqlPreparedQueryHKT, TFullSchema, TSchema> {
  static override readonly [entityKind]: string = 'BunSqlSession'
  private readonly logger: Logger
  private readonly cache = new NoopCache()

  constructor(
    private readonly pool: BunSqlPool,
    private readonly runner: Runner,
    dialect: MySqlDialect,
    private readonly schema: RelationalSchemaConfig<TSchema> | undefined,
    private readonly options: SessionOptions,
  ) {
    super(dialect)
    this.logger = options.logger ?? new NoopLogger()
  }

  prepareQuery<T extends MySqlPreparedQueryConfig>(
    query: Query,
    fields: SelectedFieldsOrdered | undefined,
    customResultMapper?: (rows: unknown[][]) => T['execute'],
    generatedIds?: Record<string, unknown>[],
    returningIds?: SelectedFieldsOrdered,
    queryMetadata?: CacheArgs[1],
    cacheConfig?: CacheArgs[2],
  ) {
    return new BunSqlPreparedQuery<T>(
      this.runner,
      query.sql,
      query.params,
      this.logger,
      this.cache,
      queryMetadata,
      cacheConfig,
      fields,
      customResultMapper,
      generatedIds,
      returningIds,
    ) as never
  }

  async all<T = unknown>(query: DrizzleSql): Promise<T[]> {
    const { sql: text, params } = this.dialect.sqlToQuery(query)
    this.logger.logQuery(text, params)
    const result = await this.runner.query(text, params, false)
    datesAsText(result, false)
    return [...result] as T[]
  }

  /**
   * A transaction holds one connection from BEGIN to COMMIT/ROLLBACK. A connection that failed or
   * timed out inside it was closed, which rolled it back: the ROLLBACK then fails at once and the
   * transaction's own error is the one thrown.
   */
  async transaction<T>(
    transaction: (tx: BunSqlTransaction<TFullSchema, TSchema>) => Promise<T>,
    config?: MySqlTransactionConfig,
  ): Promise<T> {
    const slot = await this.pool.acquire()
    try {
      const session = new BunSqlSession<TFullSchema, TSchema>(this.pool, new PinnedRunner(this.pool, slot), this.dialect, this.schema, this.options)
      const tx = new BunSqlTransaction<TFullSchema, TSchema>(this.dialect, session, this.schema, 0)
      const setTransaction = config ? this.getSetTransactionSQL(config) : undefined
      if (setTransaction) await tx.execute(setTransaction)
      const startTransaction = config ? this.getStartTransactionSQL(config) : undefined
      await tx.execute(startTransaction ?? sql`begin`)
      try {
        const result = await transaction(tx)
        await tx.execute(sql`commit`)
        return result
      } catch (error) {
        await tx.execute(sql`rollback`).catch(() => undefined)
        throw error
      }
    } finally {
      this.pool.release(slot)
    }
  }
}

export class BunSqlTransaction<
  TFullSchema extends Record<string, unknown>,
  TSchema extends TablesRelationalConfig,
> extends MySqlTransaction<BunSqlQueryResultHKT, BunSqlPreparedQueryHKT, TFullSchema, TSchema> {
  static override readonly [entityKind]: string = 'BunSqlTransaction'

  constructor(
    private readonly txDialect: MySqlDialect,
    private readonly txSession: BunSqlSession<TFullSchema, TSchema>,
    schema: RelationalSchemaConfig<TSchema> | undefined,
    nestedIndex: number,
  ) {
    super(txDialect, txSession as unknown as MySqlSession, schema, nestedIndex, 'default')
  }

  /** A nested transaction is a savepoint on the same connection. */
  async transaction<T>(transaction: (tx: BunSqlTransaction<TFullSchema, TSchema>) => Promise<T>): Promise<T> {
    const savepoint = `sp${this.nestedIndex + 1}`
    const tx = new BunSqlTransaction<TFullSchema, TSchema>(this.txDialect, this.txSession, this.schema, this.nestedIndex + 1)
    await tx.execute(sql.raw(`savepoint ${savepoint}`))
    try {
      const result = await transaction(tx)
      await tx.execute(sql.raw(`release savepoint ${savepoint}`))
      return result
    } catch (error) {
      await tx.execute(sql.raw(`rollback to savepoint ${savepoint}`))
      throw error
    }
  }
}

export type BunSqlDatabase<TSchema extends Record<string, unknown>> = MySqlDatabase<
  BunSqlQueryResultHKT,
  BunSqlPreparedQueryHKT,
  TSchema,
  ExtractTablesWithRelations<TSchema>
>

/** drizzle over a {@link BunSqlPool}, with the schema for relational queries (`db.query.…`). */
export function drizzleBunSql<TSchema extends Record<string, unknown>>(
  pool: BunSqlPool,
  config: { schema: TSchema; logger?: Logger },
): BunSqlDatabase<TSchema> {
  const dialect = new MySqlDialect()
  const tables = extractTablesRelationalConfig(config.schema, createTableRelationsHelpers)
  const schema = { fullSchema: config.schema, schema: tables.tables, tableNamesMap: tables.tableNamesMap } as RelationalSchemaConfig<
    ExtractTablesWithRelations<TSchema>
  >
  const session = new BunSqlSession<TSchema, ExtractTablesWithRelations<TSchema>>(pool, pool, dialect, schema, { logger: config.logger })
  return new MySqlDatabase(dialect, session as never, schema, 'default') as BunSqlDatabase<TSchema>
}
