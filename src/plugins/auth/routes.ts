/**
 * Which route a request will run, asked of Elysia's own router before anything else happens — so
 * the auth plugin checks the scope of the route that actually runs, whatever the spelling of the path
 * (a trailing slash, dot segments, encodings). Scopes used to be guessed from the raw path with
 * regular expressions while the router normalised it: `POST …/deploy/` ran the deploy route without
 * the `deploy` scope.
 *
 * `match` repeats the lookup of Elysia's request handler (elysia 1.4, compose.ts
 * `composeGeneralHandler`), on the same tables: the path is cut out of `request.url` the same way;
 * the static table (with each path's trailing-slash and encoded twins) is tried first, then the
 * dynamic router (`app.router.http`), and a HEAD falls back to the GET route. The app is built with
 * `systemRouter: false` (src/app.ts), so this handler is the only one that dispatches, under
 * `app.handle()` in tests and under Bun.serve alike. Two guards keep the two lookups from drifting:
 * - a request whose URL Elysia would cut differently from its real path (a Host header shorter than
 *   4 characters shifts Elysia's cut) is refused as unroutable before any route runs;
 * - the auth plugin compares, once the route runs (transform, before validation and the handler),
 *   the route that ran with the one it checked, and enforces the ran route's scope if they differ.
 */
import type { AnyElysia } from 'elysia'
import type { RouteScope } from './scopes'
import { isRouteScope, SCOPE_KEY } from './scopes'

export interface MatchedRoute {
  /** The route's method and path pattern as registered, e.g. `POST /api/v1/serve/:serve_name/deploy`. */
  method: string
  path: string
  scope: RouteScope
}

/** Thrown while building the app: these routes declare no scope (or an unknown one). */
export class MissingRouteScopeError extends Error {
  constructor(readonly routes: string[]) {
    super(
      `${routes.length} route(s) declare no scope: ${routes.join(', ')}. Give each one \`scope: 'public' | 'read' | 'write' | 'deploy' | 'admin'\` where it is defined (src/plugins/auth/scopes.ts)`,
    )
    this.name = 'MissingRouteScopeError'
  }
}

interface RouterInternals {
  router: {
    history: { method: string; path: string; hooks: { detail?: Record<string, unknown> } }[]
    static: Record<string, Record<string, number>>
    http: {
      find(method: string, path: string): { store: unknown } | null
    }
  }
  config: { strictPath?: boolean; handler?: { standardHostname?: boolean } }
  '~adapter': { isWebStandard?: boolean }
}

/** Elysia's `getLoosePath`: the trailing-slash twin of a path. */
const loosePath = (path: string) => (path.charCodeAt(path.length - 1) === 47 ? path.slice(0, -1) : `${path}/`)
/** A path parameter's value that no literal segment of this API equals. */
const PROBE = 'route-table-probe'

/** Elysia's `encodePath` of a static path. */
const encodedPath = (path: string) => encodeURIComponent(path).replace(/%2F/g, '/')

export class RouteTable {
  private readonly byStore = new Map<unknown, MatchedRoute>()
  private readonly staticPaths = new Map<string, Record<string, MatchedRoute>>()
  private readonly routes: MatchedRoute[] = []
  private app: RouterInternals | undefined
  private standardHostname = true
  private headFallsBackToGet = true
  private hasAll = false

  /**
   * Reads every route of the finished app and its declared scope; `declared` adds the scope of routes
   * that third-party plugins define (`'GET /docs/json': 'public'`). Throws MissingRouteScopeError
   * when any route has none. Call it once the last route is added.
   */
  bind(app: AnyElysia, declared: Record<string, RouteScope> = {}): this {
    const internals = app as unknown as RouterInternals
    this.app = internals
    this.standardHostname = internals.config.handler?.standardHostname ?? true
    this.headFallsBackToGet = internals['~adapter'].isWebStandard === true
    const missing: string[] = []
    const byIndex: MatchedRoute[] = []
    for (const route of internals.router.history) {
      const key = `${route.method} ${route.path}`
      const scope = declared[key] ?? route.hooks.detail?.[SCOPE_KEY]
      if (!isRouteScope(scope)) missing.push(key)
      const matched = { method: route.method, path: route.path, scope: isRouteScope(scope) ? scope : 'admin' }
      byIndex.push(matched)
      this.routes.push(matched)
    }
    if (missing.length > 0) throw new MissingRouteScopeError(missing)
    for (const [path, methods] of Object.entries(internals.router.static)) {
      const entry = Object.fromEntries(Object.entries(methods).map(([method, index]) => [method, byIndex[index] as MatchedRoute]))
      const keys = [path, ...(internals.config.strictPath === true ? [] : [loosePath(path)]), encodedPath(path)]
      // Like the cases of a switch: the first path that claims a spelling keeps it.
      for (const key of keys) if (!this.staticPaths.has(key)) this.staticPaths.set(key, entry)
    }
    // A dynamic route's entry in the router is found by asking the router for a path only it matches.
    for (const [index, route] of internals.router.history.entries()) {
      if (!/[:*]/.test(route.path)) continue
      const probe = route.path.replace(/:[^/]+/g, PROBE).replace(/\*$/, PROBE)
      const found = internals.router.http.find(route.method, probe)
      const claimed = found ? this.byStore.get(found.store) : undefined
      if (!found || claimed) {
        throw new Error(`the router does not resolve ${route.method} ${probe} to ${route.path}${claimed ? ` but to ${claimed.path}` : ''}`)
      }
      this.byStore.set(found.store, byIndex[index] as MatchedRoute)
    }
    this.hasAll = internals.router.history.some((route) => route.method === 'ALL' && /[:*]/.test(route.path))
    return this
  }

  /** Every route with its scope, in the order they were added. */
  all(): readonly MatchedRoute[] {
    return this.routes
  }

  /** The scope a route declares, by its method and pattern (`GET /api/v1/serve/:serve_name`). */
  scopeOf(method: string, path: string): RouteScope | undefined {
    return this.routes.find((route) => route.method === method && route.path === path)?.scope
  }

  /** The path Elysia routes on: `request.url` cut as its handler cuts it (no decoding, no normalising). */
  routedPath(url: string): string {
    const start = url.indexOf('/', this.standardHostname ? 11 : 7)
    const query = url.indexOf('?', start + 1)
    return url.substring(start, query === -1 ? undefined : query)
  }

  /**
   * The route this request will run; undefined when none will (the answer is then 404), or
   * `'unroutable'` when Elysia would route on something other than the URL's real path.
   */
  match(request: Request): MatchedRoute | undefined | 'unroutable' {
    const app = this.app
    if (!app) throw new Error('RouteTable.match before bind(app)')
    const path = this.routedPath(request.url)
    let real: string
    try {
      real = new URL(request.url).pathname
    } catch {
      return 'unroutable'
    }
    if (path !== real) return 'unroutable'
    const method = request.method
    const methods = this.staticPaths.get(path)
    if (methods) {
      if (method !== 'ALL' && method !== 'WS' && methods[method]) return methods[method]
      if (method === 'HEAD' && this.headFallsBackToGet && (methods.GET || methods.ALL)) return methods.GET ?? methods.ALL
      if (methods.ALL) return methods.ALL
    }
    const router = app.router.http
    if (method === 'HEAD' && this.headFallsBackToGet) {
      const get = router.find('GET', path)
      if (get) return this.routeOf(get.store)
    }
    const found = router.find(method, path) ?? (this.hasAll ? router.find('ALL', path) : null)
    return found ? this.routeOf(found.store) : undefined
  }

  private routeOf(store: unknown): MatchedRoute {
    // Every route's entry was read in bind(); one added later is given the strictest scope.
    return this.byStore.get(store) ?? { method: '?', path: '(a route added after bind)', scope: 'admin' }
  }
}
