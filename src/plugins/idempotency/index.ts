/**
 * `Idempotency-Key` on POST: the first successful (2xx) response is stored and replayed, byte for
 * byte, to retries with the same key and the same body (header `idempotent-replayed: true`); the
 * same key with another body or path is a 422; a retry while the first is still running is a 409.
 * A failed attempt releases its key, so the retry really runs again. Keys are per token and expire
 * after IDEMPOTENCY_TTL_HOURS. Not applied to POST /api/v1/tokens: its response holds a secret that
 * is never stored.
 */
import { Elysia, ElysiaCustomStatusResponse } from 'elysia'
import type { Db } from '../../db/client'
import { AppError, fieldPath } from '../../lib/errors'
import { requestIdOf } from '../../lib/http'
import { describeError, type Logger } from '../../lib/logger'
import { actorOf } from '../auth'
import { claimKey, completeKey, releaseKey } from './store'

const KEY = /^[\x21-\x7e]{1,255}$/
const claims = new WeakMap<Request, number>()

/** JSON with sorted keys, so that the same body always hashes the same. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/** What a retry must repeat to be replayed: the query string and the body, canonically. */
export const requestHashOf = (search: string, body: unknown) => new Bun.CryptoHasher('sha256').update(`${search}\n${canonicalJson(body ?? null)}`).digest('hex')

function appliesTo(request: Request, path: string) {
  return request.method === 'POST' && path.startsWith('/api/') && !path.startsWith('/api/v1/tokens')
}

export function idempotencyPlugin(options: { db: Db; ttlHours: number; log: Logger }) {
  const { db, log } = options
  return new Elysia({ name: 'idempotency' })
    .onBeforeHandle({ as: 'global' }, async ({ request, body }) => {
      const key = request.headers.get('idempotency-key')
      const url = new URL(request.url)
      if (key === null || !appliesTo(request, url.pathname)) return
      if (!KEY.test(key)) {
        throw new AppError(422, 'VALIDATION_FAILED', 'Idempotency-Key must be 1–255 printable ASCII characters', [
          { path: fieldPath('headers', '/idempotency-key'), message: 'invalid' },
        ])
      }
      const actor = actorOf(request)
      const requestHash = requestHashOf(url.search, body)
      const claim = await claimKey(db, {
        key,
        actorTokenId: actor.tokenId ?? 0,
        method: request.method,
        path: url.pathname,
        requestHash,
        ttlMs: options.ttlHours * 3_600_000,
      })
      switch (claim.kind) {
        case 'claimed':
          claims.set(request, claim.id)
          return
        case 'mismatch':
          throw new AppError(422, 'IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different request; use a new key')
        case 'in_progress':
          throw new AppError(409, 'IDEMPOTENCY_IN_PROGRESS', 'A request with this Idempotency-Key is still being processed; retry later')
        case 'replay':
          return new Response(claim.body, {
            status: claim.statusCode,
            headers: {
              'content-type': 'application/json',
              'idempotent-replayed': 'true',
              'x-request-id': requestIdOf(request),
            },
          })
      }
    })
    .onAfterHandle({ as: 'global' }, async ({ request, response, set }) => {
      const id = claims.get(request)
      if (id === undefined) return
      const [status, value] =
        response instanceof ElysiaCustomStatusResponse
          ? [response.code as number, response.response]
          : [typeof set.status === 'number' ? set.status : 200, response]
      if (status >= 300) return // released after the response, like any failure
      claims.delete(request)
      await completeKey(db, id, status, JSON.stringify(value))
    })
    .onAfterResponse({ as: 'global' }, async ({ request }) => {
      const id = claims.get(request)
      if (id === undefined) return
      claims.delete(request)
      await releaseKey(db, id).catch((error) => log.warn('could not release an idempotency key', describeError(error)))
    })
}
