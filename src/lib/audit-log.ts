/**
 * Writes the audit trail. Every mutating module and the audit plugin call it, in their own
 * transaction; the audit module only reads the table (GET /api/v1/audit).
 */
// In lib/, not modules/audit: below every module and plugin that writes the trail, and lib/ already writes its own tables (lease.ts).
import type { Executor } from '../db/client'
import { auditLog } from '../db/schema'
import type { AuditContext, AuditEntry } from './audit'

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
