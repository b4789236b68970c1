import { and, count, desc, eq, gte, lte, type SQL } from 'drizzle-orm'
import type { Db } from '../../db/client'
import { type AuditRow, auditLog } from '../../db/schema'
import { type Page, type PageRequest, pageWindow } from '../../lib/pagination'
import type { AuditModel } from './model'

// The audit types (Actor, AuditContext, AuditEntry) are in lib/audit, the writer (recordAudit) in lib/audit-log.

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
