/**
 * The Bun SQL driver (src/db/bun-sql.ts) against the test database: values come back as drizzle's
 * mysql-core columns expect them (and as mysql2 answers them), transactions and savepoints commit
 * and roll back on one connection, and its errors satisfy the predicates of src/lib/errors.ts.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { SQL } from 'bun'
import { eq, sql } from 'drizzle-orm'
import { bigint, boolean, datetime, int, json, longtext, mysqlEnum, mysqlTable, varchar } from 'drizzle-orm/mysql-core'
import { BunSqlPool, drizzleBunSql, normaliseError, STATEMENT_TIMEOUT } from '../../src/db/bun-sql'
import { affectedRows } from '../../src/db/client'
import { ensureDatabaseExists } from '../../src/db/migrate'
import { isDatabaseUnavailable, isDeadlock, isDuplicateKey, isStillReferenced } from '../../src/lib/errors'

const parents = mysqlTable('parents', {
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  name: varchar('name', { length: 32 }).notNull().unique(),
})
const things = mysqlTable('things', {
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  parentId: bigint('parent_id', { mode: 'number', unsigned: true }).references(() => parents.id, { onDelete: 'restrict' }),
  at: datetime('at', { mode: 'date', fsp: 3 }).notNull(),
  doc: json('doc').$type<{ list: (number | string)[]; nested: { ok: boolean } }>(),
  flag: boolean('flag').notNull(),
  kind: mysqlEnum('kind', ['small', 'large']).notNull(),
  body: longtext('body'),
  note: varchar('note', { length: 64 }),
  count: int('count').notNull().default(0),
})
const schema = { parents, things }

const server = new URL(process.env.TEST_DATABASE_SERVER_URL ?? '')
const url = new URL(server)
url.pathname = `/bunsql_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
const pool = new BunSqlPool({ url: url.toString(), poolSize: 3, statementTimeoutMs: 2_000, connectTimeoutMs: 2_000 })
const db = drizzleBunSql(pool, { schema })

beforeAll(async () => {
  await ensureDatabaseExists(url.toString())
  await db.execute(sql`create table parents (id bigint unsigned auto_increment primary key, name varchar(32) not null unique) engine=InnoDB`)
  await db.execute(sql`
    create table things (
      id bigint unsigned auto_increment primary key,
      parent_id bigint unsigned null references parents (id) on delete restrict,
      at datetime(3) not null, doc json null, flag tinyint(1) not null, kind enum('small', 'large') not null,
      body longtext null, note varchar(64) null, count int not null default 0
    ) engine=InnoDB auto_increment=4294967290`)
})
afterAll(async () => {
  await db.execute(sql.raw(`drop database if exists \`${url.pathname.slice(1)}\``))
  await pool.close()
})

test('values: DATETIME in UTC, JSON parsed, BIGINT ids as numbers past 2^31, booleans, ENUM, LONGTEXT and NULLs', async () => {
  const at = new Date('2024-02-29T23:59:58.123Z')
  const body = 'x'.repeat(100_000)
  const [inserted] = await db
    .insert(things)
    .values({ at, doc: { list: [1, 'two'], nested: { ok: true } }, flag: true, kind: 'large', body, note: null })
    .$returningId()
  // Past the 32-bit range Bun answers BIGINT as text: drizzle's number mode still gets a number.
  expect(inserted!.id).toBeGreaterThan(2 ** 31)
  const [row] = await db.select().from(things).where(eq(things.id, inserted!.id))
  expect(row).toEqual({ id: inserted!.id, parentId: null, at, doc: { list: [1, 'two'], nested: { ok: true } }, flag: true, kind: 'large', body, note: null, count: 0 })
  // What the server stored is the UTC wall time, whatever the time zone of this process.
  const [[stored]] = (await db.execute(sql`select date_format(at, '%Y-%m-%d %H:%i:%s.%f') as text, at from things where id = ${inserted!.id}`)) as unknown as [
    { text: string; at: string }[],
  ]
  expect(stored!.text).toBe('2024-02-29 23:59:58.123000')
  // Raw statements answer DATETIME as the server's text, as drizzle's mysql2 session does.
  expect(stored!.at).toBe('2024-02-29 23:59:58.123')
  // Relational queries map the same values.
  const found = await db.query.things.findFirst({ where: eq(things.id, inserted!.id), columns: { at: true, flag: true, doc: true } })
  expect(found).toEqual({ at, flag: true, doc: { list: [1, 'two'], nested: { ok: true } } })
})

test('$returningId() answers every id of a multi-row insert; execute() answers mysql2 shapes', async () => {
  const ids = await db
    .insert(things)
    .values([0, 1, 2].map((count) => ({ at: new Date(), flag: false, kind: 'small' as const, count })))
    .$returningId()
  expect(ids).toHaveLength(3)
  expect(ids[1]!.id).toBe(ids[0]!.id + 1)
  expect(ids[2]!.id).toBe(ids[0]!.id + 2)
  const [rows, columns] = (await db.execute(sql`select id, count from things where id = ${ids[0]!.id}`)) as unknown as [unknown[], { name: string }[]]
  expect(rows).toEqual([{ id: ids[0]!.id, count: 0 }])
  expect(columns.map((c) => c.name)).toEqual(['id', 'count'])
  // An UPDATE counts the rows it matched, even when their values do not change (mysql2's FOUND_ROWS).
  const unchanged = await db.update(things).set({ count: 0 }).where(eq(things.id, ids[0]!.id))
  expect(affectedRows(unchanged)).toBe(1)
  expect(affectedRows(await db.delete(things).where(eq(things.id, -1)))).toBe(0)
})

test('transactions commit, roll back on a throw, and nested ones are savepoints', async () => {
  await db.transaction(async (tx) => {
    await tx.insert(parents).values({ name: 'committed' })
    await tx
      .transaction(async (inner) => {
        await inner.insert(parents).values({ name: 'savepoint-rolled-back' })
        throw new Error('undo the savepoint only')
      })
      .catch(() => undefined)
    await tx.transaction(async (inner) => {
      await inner.insert(parents).values({ name: 'savepoint-kept' })
    })
  })
  await expect(
    db.transaction(async (tx) => {
      await tx.insert(parents).values({ name: 'rolled-back' })
      tx.rollback()
    }),
  ).rejects.toThrow()
  await expect(
    db.transaction(async (tx) => {
      await tx.insert(parents).values({ name: 'thrown' })
      throw new Error('boom')
    }),
  ).rejects.toThrow('boom')
  const names = (await db.select({ name: parents.name }).from(parents)).map((p) => p.name).sort()
  expect(names).toEqual(['committed', 'savepoint-kept'])
  // A configured transaction sends SET TRANSACTION and START TRANSACTION … on its connection first.
  const answer = await db.transaction(async (tx) => (await tx.select().from(parents)).length, {
    isolationLevel: 'serializable',
    accessMode: 'read only',
  })
  expect(answer).toBe(2)
})

test('errors: duplicate key, still referenced and deadlock read as mysql2 errors do', async () => {
  const duplicate = await db
    .insert(parents)
    .values({ name: 'committed' })
    .then(() => undefined, (e: unknown) => e)
  expect(isDuplicateKey(duplicate)).toBe(true)
  expect(isDatabaseUnavailable(duplicate)).toBe(false)

  const [parent] = await db.insert(parents).values({ name: 'referenced' }).$returningId()
  await db.insert(things).values({ parentId: parent!.id, at: new Date(), flag: true, kind: 'small' })
  const referenced = await db
    .delete(parents)
    .where(eq(parents.id, parent!.id))
    .then(() => undefined, (e: unknown) => e)
  expect(isStillReferenced(referenced)).toBe(true)

  // A deadlock cannot be provoked deterministically here: the server's error as Bun raises it.
  const deadlock = normaliseError(new SQL.MySQLError('Deadlock found', { code: 'ERR_MYSQL_SERVER_ERROR', errno: 1213, sqlState: '40001' }))
  expect(isDeadlock(deadlock)).toBe(true)
  expect(isDatabaseUnavailable(deadlock)).toBe(true)
})

test('a server that cannot be reached is "database unavailable"', async () => {
  const nowhere = new BunSqlPool({ url: 'mysql://root@127.0.0.1:1/nowhere', poolSize: 1, statementTimeoutMs: 1_000, connectTimeoutMs: 1_000 })
  try {
    const error = await nowhere.query('select 1', [], true).then(() => undefined, (e: unknown) => e)
    expect(isDatabaseUnavailable(error)).toBe(true)
  } finally {
    await nowhere.close()
  }
})

test('a statement past its bound fails as unavailable, its connection is closed, and the pool goes on', async () => {
  const short = new BunSqlPool({ url: url.toString(), poolSize: 1, statementTimeoutMs: 200, connectTimeoutMs: 1_000 })
  try {
    const late = drizzleBunSql(short, { schema })
    const error = await late.execute(sql`select sleep(1)`).then(() => undefined, (e: unknown) => e)
    expect(isDatabaseUnavailable(error)).toBe(true)
    expect((error as { cause?: { code?: string } }).cause?.code).toBe(STATEMENT_TIMEOUT)
    // The one connection was replaced: the next statement does not wait behind the sleeping one.
    const [[row]] = (await late.execute(sql`select connection_id() as id`)) as unknown as [{ id: number }[]]
    expect(row!.id).toBeGreaterThan(0)
    // A transaction whose statement timed out was rolled back with its connection.
    const inTx = await late
      .transaction(async (tx) => {
        await tx.insert(parents).values({ name: 'never' })
        await tx.execute(sql`select sleep(1)`)
      })
      .then(() => undefined, (e: unknown) => e)
    expect(isDatabaseUnavailable(inTx)).toBe(true)
    expect(await late.select().from(parents).where(eq(parents.name, 'never'))).toEqual([])
  } finally {
    await short.close()
  }
})

test('a connection idle past idleMs is replaced, not reused', async () => {
  const idle = new BunSqlPool({ url: url.toString(), poolSize: 1, statementTimeoutMs: 2_000, connectTimeoutMs: 2_000, idleMs: 1 })
  try {
    const connectionId = async () => ((await idle.query('select connection_id() as id', [], false)) as unknown as { id: number }[])[0]!.id
    const first = await connectionId()
    await Bun.sleep(5)
    expect(await connectionId()).not.toBe(first)
  } finally {
    await idle.close()
  }
})
