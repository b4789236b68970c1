/**
 * The scope each route needs is declared on the route itself, where it is defined:
 *
 *     .post('/:serve_name/deploy', handler, { scope: 'deploy', body: …, detail: … })
 *
 * `scope` is the `routeScopes` macro below. It writes the scope into the route's OpenAPI detail
 * (`x-required-scope`, so /docs/json says it too), and the auth plugin reads it back from the route
 * the router matched (./routes.ts). A route that declares none stops the app from being built. The
 * rules themselves are the README's: `admin` implies every scope; `write` and `deploy` imply `read`;
 * `public` routes (liveness, readiness, the docs) need no token at all.
 */
import { Elysia } from 'elysia'
import type { TokenScope } from '../../db/schema'

/** What a route can declare: a token scope, or `public` for no token at all. */
export type RouteScope = TokenScope | 'public'

export const ROUTE_SCOPES: readonly RouteScope[] = ['public', 'read', 'write', 'deploy', 'admin']

/** Where the declared scope is kept in a route's detail (and so in its /docs/json operation). */
export const SCOPE_KEY = 'x-required-scope'

export const isRouteScope = (value: unknown): value is RouteScope => typeof value === 'string' && (ROUTE_SCOPES as readonly string[]).includes(value)

/**
 * The `scope` route option. Every controller `.use()`s it (it is deduplicated by name), so that the
 * option is typed where the routes are written. Public routes also get `security: []` in /docs/json.
 */
export const routeScopes = new Elysia({ name: 'route-scopes' }).macro({
  scope: (scope: RouteScope) => ({
    detail: scope === 'public' ? { [SCOPE_KEY]: scope, security: [] } : { [SCOPE_KEY]: scope },
  }),
})

export function grants(held: readonly TokenScope[], needed: TokenScope): boolean {
  if (held.includes('admin') || held.includes(needed)) return true
  return needed === 'read' && (held.includes('write') || held.includes('deploy'))
}
