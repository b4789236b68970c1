import { and, count, desc, eq, gte, lte, type SQL } from 'drizzle-orm'
import type { Db, Executor } from '../../db/client'
import { type AuditRow, auditLog } from '../../db/schema'
import { type Page, type PageRequest, pageWindow } from '../../lib/pagination'
import type { Actor } from '../token/service'
import type { AuditModel } from './model'

/** Who is acting and in which request; built by the controller, passed to every mutating service. */
export interface AuditContext {
  actor: Actor
  requestId: string
  /** The operation, as `METHOD /route/:pattern`. */
  action: string
}

export interface AuditEntry {
  resourceType: string
  resourceName: string
  statusCode: number
  outcome?: 'success' | 'failure'
  /** What changed. Never put a secret here. */
  summary?: Record<string, unknown>
}

/** Call inside the transaction that makes the change, so the record and the change commit together. */
export async function recordAudit(executor: Executor, audit: AuditContext, entry: AuditEntry): Promise<void> {
  await executor.insert(auditLog).values({
    actorTokenId: audit.actor.tokenId,
    actorName: audit.actor.name,
    action: audit.action,
    resourceType: entry.resourceType,
    resourceName: entry.resourceName,
    outcome: entry.outcome ?? 'success',
    statusCode: entry.statusCode,
    requestId: audit.requestId,
    summary: entry.summary ?? {},
  })
}

export function toAuditEntry(row: AuditRow): AuditModel.Entry {
  return {
    id: row.id,
    at: row.at.toISOString(),
    actor: { token_id: row.actorTokenId, name: row.actorName },
    action: row.action,
    resource_type: row.resourceType,
    resource_name: row.resourceName,
    outcome: row.outcome,
    status_code: row.statusCode,
    request_id: row.requestId,
    summary: row.summary,
  }
}

export async function listAudit(db: Db, query: PageRequest & AuditModel.Filters): Promise<Page<AuditRow>> {
  const { page, limit, offset } = pageWindow(query)
  const conditions: SQL[] = []
  if (query.resource_type) conditions.push(eq(auditLog.resourceType, query.resource_type))
  if (query.resource_name) conditions.push(eq(auditLog.resourceName, query.resource_name))
  if (query.actor) conditions.push(eq(auditLog.actorName, query.actor))
  if (query.action) conditions.push(eq(auditLog.action, query.action))
  if (query.outcome) conditions.push(eq(auditLog.outcome, query.outcome))
  if (query.from) conditions.push(gte(auditLog.at, new Date(query.from)))
  if (query.to) conditions.push(lte(auditLog.at, new Date(query.to)))
  const where = conditions.length > 0 ? and(...conditions) : undefined
  const [items, [totals]] = await Promise.all([
    db.select().from(auditLog).where(where).orderBy(desc(auditLog.at), desc(auditLog.id)).limit(limit).offset(offset),
    db.select({ total: count() }).from(auditLog).where(where),
  ])
  return { items, total: totals?.total ?? 0, page, limit }
}
