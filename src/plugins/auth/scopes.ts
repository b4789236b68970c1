/**
 * Which scope each route needs. One table, read top to bottom, first match wins; documented in the
 * README. `admin` implies every scope; `write` and `deploy` imply `read`.
 */
import type { TokenScope } from '../../db/schema'

/** Open to everyone: liveness, readiness and the API docs. */
export function isPublicPath(path: string): boolean {
  return !path.startsWith('/api/')
}

const RULES: ReadonlyArray<{ methods: readonly string[] | '*'; path: RegExp; scope: TokenScope }> = [
  { methods: '*', path: /^\/api\/v1\/tokens(\/|$)/, scope: 'admin' },
  { methods: '*', path: /^\/api\/v1\/audit(\/|$)/, scope: 'admin' },
  { methods: ['POST'], path: /^\/api\/v1\/serve\/(deploy-model|undeploy-model)$/, scope: 'deploy' },
  { methods: ['POST'], path: /^\/api\/v1\/serve\/[^/]+\/(deploy|undeploy|rollback)(\/[^/]+)?$/, scope: 'deploy' },
  // Changing a deployed serve's infra config redeploys it; a schedule changes its live replicas.
  { methods: ['PATCH'], path: /^\/api\/v1\/serve\/[^/]+\/infra-config\/[^/]+$/, scope: 'deploy' },
  { methods: ['PUT', 'DELETE'], path: /^\/api\/v1\/serve\/[^/]+\/scaling-schedule\/[^/]+$/, scope: 'deploy' },
  { methods: ['POST'], path: /^\/api\/v1\/scaling\/tick$/, scope: 'deploy' },
  { methods: ['GET', 'HEAD'], path: /^\/api\//, scope: 'read' },
  { methods: '*', path: /^\/api\//, scope: 'write' },
]

export function requiredScope(method: string, path: string): TokenScope {
  const rule = RULES.find((r) => (r.methods === '*' || r.methods.includes(method)) && r.path.test(path))
  return rule?.scope ?? 'admin'
}

export function grants(held: readonly TokenScope[], needed: TokenScope): boolean {
  if (held.includes('admin') || held.includes(needed)) return true
  return needed === 'read' && (held.includes('write') || held.includes('deploy'))
}
