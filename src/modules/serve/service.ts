import { and, asc, count, eq, like, type SQL, sql } from 'drizzle-orm'
import type { Db, Executor } from '../../db/client'
import { preparedPerHandle } from '../../db/prepared'
import { type ServeRow, serves } from '../../db/schema'
import { AppError, alreadyExists, isDuplicateKey, notFound } from '../../lib/errors'
import { escapeLike, type Page, type PageRequest, pageWindow } from '../../lib/pagination'
import type { AuditContext } from '../../lib/audit'
import { recordAudit } from '../../lib/audit-log'
import { deployedEnvironments } from '../placement/service'
import type { ServeModel } from './model'

export function toServe(row: ServeRow): ServeModel.Serve {
  return {
    id: row.id,
    name: row.name,
    type: row.type,
    description: row.description,
    space: row.space,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

const serveByName = preparedPerHandle((db: Executor) => db.select().from(serves).where(eq(serves.name, sql.placeholder('name'))).limit(1).prepare())

export async function findServe(db: Executor, name: string): Promise<ServeRow> {
  const [row] = await serveByName(db).execute({ name })
  if (!row) throw notFound('Serve', name)
  return row
}

export async function createServe(db: Db, audit: AuditContext, body: ServeModel.CreateBody): Promise<ServeRow> {
  try {
    await db.transaction(async (tx) => {
      await tx.insert(serves).values({ name: body.name, type: body.type, description: body.description, space: body.space })
      await recordAudit(tx, audit, { resourceType: 'serve', resourceName: body.name, statusCode: 201, summary: { ...body } })
    })
  } catch (error) {
    if (isDuplicateKey(error)) throw alreadyExists(`Serve with name ${body.name} already exists`)
    throw error
  }
  return findServe(db, body.name)
}

export async function listServes(db: Db, query: PageRequest & Omit<ServeModel.ListQuery, 'page' | 'limit'>): Promise<Page<ServeRow>> {
  const { page, limit, offset } = pageWindow(query)
  const conditions: SQL[] = []
  if (query.space !== undefined) conditions.push(eq(serves.space, query.space))
  if (query.type !== undefined) conditions.push(eq(serves.type, query.type))
  if (query.name_prefix) conditions.push(like(serves.name, `${escapeLike(query.name_prefix)}%`))
  const where = conditions.length > 0 ? and(...conditions) : undefined
  const [items, [totals]] = await Promise.all(
    where
      ? [db.select().from(serves).where(where).orderBy(asc(serves.name)).limit(limit).offset(offset), db.select({ total: count() }).from(serves).where(where)]
      : [servePage(db).execute({ limit, offset }), serveCount(db).execute()],
  )
  return { items, total: totals?.total ?? 0, page, limit }
}

// The unfiltered list, the common call, is prepared; a filtered one is built for its filters.
const servePage = preparedPerHandle((db: Db) => db.select().from(serves).orderBy(asc(serves.name)).limit(sql.placeholder('limit')).offset(sql.placeholder('offset')).prepare())
const serveCount = preparedPerHandle((db: Db) => db.select({ total: count() }).from(serves).prepare())

export async function updateServe(db: Db, audit: AuditContext, name: string, body: ServeModel.UpdateBody): Promise<ServeRow> {
  const existing = await findServe(db, name)
  const changes = Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined))
  await db.transaction(async (tx) => {
    if (Object.keys(changes).length > 0) await tx.update(serves).set(changes).where(eq(serves.id, existing.id))
    await recordAudit(tx, audit, { resourceType: 'serve', resourceName: name, statusCode: 200, summary: changes })
  })
  return findServe(db, name)
}

/** Removes the serve with its infra configs and artifacts; refused while it is deployed anywhere. */
export async function deleteServe(db: Db, audit: AuditContext, name: string): Promise<void> {
  const existing = await findServe(db, name)
  const deployedTo = await deployedEnvironments(db, existing.id)
  if (deployedTo.length > 0) {
    throw new AppError(409, 'SERVE_DEPLOYED', `Serve ${name} is deployed in ${deployedTo.join(', ')}; undeploy it first`)
  }
  await db.transaction(async (tx) => {
    await tx.delete(serves).where(eq(serves.id, existing.id))
    await recordAudit(tx, audit, { resourceType: 'serve', resourceName: name, statusCode: 200 })
  })
}
