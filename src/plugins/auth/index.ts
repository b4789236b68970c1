/**
 * Bearer-token authentication and scope checks for everything under /api/. Runs at onRequest,
 * before the body is parsed or validated, so an anonymous caller learns nothing about the API
 * beyond 401. Health, readiness and the docs stay open.
 */
import { Elysia } from 'elysia'
import type { Db } from '../../db/client'
import { AppError } from '../../lib/errors'
import { describeError, type Logger } from '../../lib/logger'
import { type Actor, AUTH_DISABLED_ACTOR, authenticate, touchToken } from '../../modules/token/service'
import { grants, isPublicPath, requiredScope } from './scopes'

const actors = new WeakMap<Request, Actor>()

/** The authenticated caller of a request (auth runs before every /api/ handler). */
export function actorOf(request: Request): Actor {
  const actor = actors.get(request)
  if (!actor) throw new AppError(401, 'UNAUTHENTICATED', 'Missing bearer token')
  return actor
}

/** last_used_at is informative: written at most once a minute per token, never on the request path. */
const TOUCH_INTERVAL_MS = 60_000

export function authPlugin(options: { db: Db; enabled: boolean; log: Logger }) {
  const { db, enabled, log } = options
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
    const actor = await authenticate(db, match[1], now)
    if (!actor) throw new AppError(401, 'UNAUTHENTICATED', 'Invalid, expired or revoked token')
    const { lastUsedAt, ...caller } = actor
    // Known before the scope check, so that a refused attempt is attributed in the audit log.
    actors.set(request, caller)
    const needed = requiredScope(request.method, path)
    if (!grants(caller.scopes, needed)) {
      throw new AppError(403, 'FORBIDDEN', `This call needs the "${needed}" scope; the token has: ${caller.scopes.join(', ')}`)
    }
    if (caller.tokenId !== null && (!lastUsedAt || now.getTime() - lastUsedAt.getTime() > TOUCH_INTERVAL_MS)) {
      touchToken(db, caller.tokenId, now).catch((error) => log.warn('could not record token use', describeError(error)))
    }
  })
}
