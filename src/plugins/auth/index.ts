/**
 * Bearer-token authentication and scope checks for everything under /api/. Runs at onRequest,
 * before the body is parsed or validated, so an anonymous caller learns nothing about the API
 * beyond 401. Health, readiness and the docs stay open.
 */
import { Elysia } from 'elysia'
import { TOKEN_SCOPES } from '../../db/schema'
import type { Actor } from '../../lib/audit'
import { AppError } from '../../lib/errors'
import { describeError, type Logger } from '../../lib/logger'
import { grants, isPublicPath, requiredScope } from './scopes'

/** The caller when auth is off (ENV=local only): nobody in particular, with every scope. */
export const AUTH_DISABLED_ACTOR: Actor = { tokenId: null, name: 'anonymous (auth disabled)', scopes: TOKEN_SCOPES }

const actors = new WeakMap<Request, Actor>()

/** The authenticated caller of a request (auth runs before every /api/ handler). */
export function actorOf(request: Request): Actor {
  const actor = actors.get(request)
  if (!actor) throw new AppError(401, 'UNAUTHENTICATED', 'Missing bearer token')
  return actor
}

/** last_used_at is informative: written at most once a minute per token, never on the request path. */
const TOUCH_INTERVAL_MS = 60_000

export interface AuthOptions {
  /** The caller a bearer token stands for, or undefined when it is unknown, revoked or expired. */
  verifyToken: (bearer: string, now: Date) => Promise<(Actor & { lastUsedAt: Date | null }) | undefined>
  /** Records a token's use; called off the request path, at most once a minute per token. */
  touchToken: (tokenId: number, now: Date) => Promise<void>
  enabled: boolean
  log: Logger
}

/** The token check comes in as a parameter (src/app.ts builds it from the token module): plugins import no module. */
export function authPlugin(options: AuthOptions) {
  const { verifyToken, touchToken, enabled, log } = options
  return new Elysia({ name: 'auth' }).onRequest(async ({ request }) => {
    const path = new URL(request.url).pathname
    if (isPublicPath(path)) return
    if (!enabled) {
      actors.set(request, AUTH_DISABLED_ACTOR)
      return
    }
    const header = request.headers.get('authorization') ?? ''
    const match = /^Bearer\s+(\S{1,512})$/i.exec(header)
    if (!match?.[1]) throw new AppError(401, 'UNAUTHENTICATED', 'Missing bearer token: send "Authorization: Bearer <token>"')
    const now = new Date()
    const actor = await verifyToken(match[1], now)
    if (!actor) throw new AppError(401, 'UNAUTHENTICATED', 'Invalid, expired or revoked token')
    const { lastUsedAt, ...caller } = actor
    // Known before the scope check, so that a refused attempt is attributed in the audit log.
    actors.set(request, caller)
    const needed = requiredScope(request.method, path)
    if (!grants(caller.scopes, needed)) {
      throw new AppError(403, 'FORBIDDEN', `This call needs the "${needed}" scope; the token has: ${caller.scopes.join(', ')}`)
    }
    if (caller.tokenId !== null && (!lastUsedAt || now.getTime() - lastUsedAt.getTime() > TOUCH_INTERVAL_MS)) {
      touchToken(caller.tokenId, now).catch((error) => log.warn('could not record token use', describeError(error)))
    }
  })
}
