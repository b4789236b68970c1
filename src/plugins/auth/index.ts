/**
 * Bearer-token authentication and the scope check, at onRequest: before the body is read, parsed or
 * validated, so an anonymous caller learns nothing about the API beyond 401. The scope checked is
 * the one the matched route declares (./scopes.ts, ./routes.ts), not one guessed from the path:
 * every spelling of a path that reaches a route is checked as that route.
 *
 * - a route declaring `public` (liveness, readiness, the docs) needs no token;
 * - every other route needs a valid token (401), then the scope it declares (403);
 * - a request no route takes gets its 404 — under /api/ only after a valid token, so that probing
 *   for routes without one answers 401 everywhere;
 * - a request Elysia would route on another path than its URL's is refused as 404 before anything.
 */
import { Elysia } from 'elysia'
import { TOKEN_SCOPES } from '../../db/schema'
import type { Actor } from '../../lib/audit'
import { AppError } from '../../lib/errors'
import { describeError, type Logger } from '../../lib/logger'
import type { MatchedRoute, RouteTable } from './routes'
import { grants, type RouteScope } from './scopes'

export { MissingRouteScopeError, type MatchedRoute, RouteTable } from './routes'
export { grants, type RouteScope, routeScopes, SCOPE_KEY } from './scopes'

/** The caller when auth is off (ENV=local only): nobody in particular, with every scope. */
export const AUTH_DISABLED_ACTOR: Actor = { tokenId: null, name: 'anonymous (auth disabled)', scopes: TOKEN_SCOPES }

const actors = new WeakMap<Request, Actor>()
const matched = new WeakMap<Request, MatchedRoute>()

/** The authenticated caller of a request (auth runs before every /api/ handler). */
export function actorOf(request: Request): Actor {
  const actor = actors.get(request)
  if (!actor) throw new AppError(401, 'UNAUTHENTICATED', 'Missing bearer token')
  return actor
}

/** The caller, when there is one (a public route has none). */
export const callerOf = (request: Request): Actor | undefined => actors.get(request)

/** The route this request runs, as resolved before anything else (undefined: no route takes it). */
export const matchedRouteOf = (request: Request): MatchedRoute | undefined => matched.get(request)

/** last_used_at is informative: written at most once a minute per token, never on the request path. */
const TOUCH_INTERVAL_MS = 60_000

export interface AuthOptions {
  /** The caller a bearer token stands for, or undefined when it is unknown, revoked or expired. */
  verifyToken: (bearer: string, now: Date) => Promise<(Actor & { lastUsedAt: Date | null }) | undefined>
  /** Records a token's use; called off the request path, at most once a minute per token. */
  touchToken: (tokenId: number, now: Date) => Promise<void>
  enabled: boolean
  log: Logger
  /**
   * The app's routes and their scopes, bound once the app is built (src/app.ts). Required when auth
   * is enabled; without it (a bare app with auth off, in a test) every request gets the disabled actor.
   */
  routes?: RouteTable
}

const underApi = (path: string) => path === '/api' || path.startsWith('/api/')

const forbidden = (needed: RouteScope, held: readonly string[]) =>
  new AppError(403, 'FORBIDDEN', `This call needs the "${needed}" scope; the token has: ${held.join(', ')}`)

/** The token check comes in as a parameter (src/app.ts builds it from the token module): plugins import no module. */
export function authPlugin(options: AuthOptions) {
  const { verifyToken, touchToken, enabled, log, routes } = options
  if (enabled && !routes) throw new Error('authPlugin: auth is enabled but no route table was given')

  return new Elysia({ name: 'auth' })
    .onRequest(async ({ request }) => {
      const route = routes?.match(request)
      if (route === 'unroutable') {
        throw new AppError(404, 'ROUTE_NOT_FOUND', `No route ${request.method} ${new URL(request.url).pathname}`)
      }
      if (route) matched.set(request, route)
      if (route?.scope === 'public') return
      if (!route && !underApi(new URL(request.url).pathname)) return // no route, outside the API: 404 for everyone
      if (!enabled) {
        actors.set(request, AUTH_DISABLED_ACTOR)
        return
      }
      const header = request.headers.get('authorization') ?? ''
      const bearer = /^Bearer\s+(\S{1,512})$/i.exec(header)
      if (!bearer?.[1]) throw new AppError(401, 'UNAUTHENTICATED', 'Missing bearer token: send "Authorization: Bearer <token>"')
      const now = new Date()
      const actor = await verifyToken(bearer[1], now)
      if (!actor) throw new AppError(401, 'UNAUTHENTICATED', 'Invalid, expired or revoked token')
      const { lastUsedAt, ...caller } = actor
      // Known before the scope check, so that a refused attempt is attributed in the audit log.
      actors.set(request, caller)
      if (route && !grants(caller.scopes, route.scope)) throw forbidden(route.scope, caller.scopes)
      if (caller.tokenId !== null && (!lastUsedAt || now.getTime() - lastUsedAt.getTime() > TOUCH_INTERVAL_MS)) {
        touchToken(caller.tokenId, now).catch((error) => log.warn('could not record token use', describeError(error)))
      }
    })
    .onTransform({ as: 'global' }, ({ request, route }) => {
      // The route that runs, checked against the one resolved at onRequest: the same unless the two
      // lookups drift apart (routes.ts). Before validation and the handler: nothing has happened yet.
      if (!routes) return
      const method = request.method === 'HEAD' ? 'GET' : request.method
      const checked = matched.get(request)
      if (checked && checked.path === route && (checked.method === request.method || checked.method === method)) return
      const scope = routes.scopeOf(method, route) ?? routes.scopeOf('ALL', route) ?? 'admin'
      log.warn('the route that ran is not the one the scope was checked for', {
        method: request.method,
        ran: route,
        checked: checked ? `${checked.method} ${checked.path}` : null,
      })
      if (scope === 'public' || !enabled) return
      const caller = actors.get(request)
      if (!caller) throw new AppError(401, 'UNAUTHENTICATED', 'Missing bearer token: send "Authorization: Bearer <token>"')
      if (!grants(caller.scopes, scope)) throw forbidden(scope, caller.scopes)
    })
}
