/**
 * The audit trail's two halves: `auditContextOf` gives services what they write, in their own
 * transaction, when a mutation succeeds; the plugin records failed mutation attempts after the
 * response (there is no transaction to share with a change that did not happen).
 */
import { Elysia } from 'elysia'
import type { Db } from '../../db/client'
import type { AuditContext } from '../../lib/audit'
import { recordAudit } from '../../lib/audit-log'
import { requestIdOf } from '../../lib/http'
import { describeError, type Logger } from '../../lib/logger'
import { actorOf } from '../auth'

const MUTATIONS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export function auditContextOf(request: Request, route: string): AuditContext {
  return { actor: actorOf(request), requestId: requestIdOf(request), action: `${request.method} ${route}` }
}

/** `/api/v1/serve/my-model/deploy` → type `serve`, name `my-model`; on a collection, the body's `name`. */
function resourceOf(path: string, body: unknown): { type: string; name: string } {
  const [, , , type = 'unknown', fromPath] = path.split('/')
  const fromBody = (body as { name?: unknown; serve_name?: unknown } | null | undefined) ?? {}
  const name = fromPath ?? [fromBody.name, fromBody.serve_name].find((value) => typeof value === 'string') ?? ''
  let decoded: string
  try {
    decoded = decodeURIComponent(String(name))
  } catch {
    decoded = String(name)
  }
  return { type: type.slice(0, 50), name: decoded.slice(0, 255) }
}

export function auditPlugin(options: { db: Db; log: Logger }) {
  return new Elysia({ name: 'audit' }).onAfterResponse({ as: 'global' }, async ({ request, set, route, body }) => {
    const status = typeof set.status === 'number' ? set.status : 200
    const path = new URL(request.url).pathname
    // A rate-limited attempt (429) is counted, not audited: under a flood each entry would be a write.
    if (!MUTATIONS.has(request.method) || status < 400 || status === 429 || !path.startsWith('/api/')) return
    let audit: AuditContext
    try {
      audit = auditContextOf(request, route || path)
    } catch {
      return // no authenticated caller: nothing to attribute
    }
    const resource = resourceOf(path, body)
    try {
      await recordAudit(options.db, audit, {
        resourceType: resource.type,
        resourceName: resource.name,
        statusCode: status,
        outcome: 'failure',
      })
    } catch (error) {
      options.log.warn('could not record a failed mutation in the audit log', describeError(error))
    }
  })
}
