/**
 * Who acts, and in which request: the types every mutating service, the auth plugin and the audit
 * plugin share. Types only; the writer is `recordAudit` in ./audit-log.
 */
import type { TokenScope } from '../db/schema'

/** Who is calling: a token, or nobody in particular when auth is off (ENV=local only). */
export interface Actor {
  tokenId: number | null
  name: string
  scopes: readonly TokenScope[]
}

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
