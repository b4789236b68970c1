/**
 * `Idempotency-Key` on POST: the first successful (2xx) answer — status, content type and body, byte
 * for byte, of any size (the body is a LONGTEXT) — is stored before it is sent, and replayed to retries
 * with the same key and the same body (header `idempotent-replayed: true`); the same key with another
 * body or path is a 422; a retry while the first is still running is a 409 IDEMPOTENCY_IN_PROGRESS. A
 * failed attempt (any other status) releases its key, so the retry really runs again. Keys are per
 * token and expire after IDEMPOTENCY_TTL_HOURS; the janitor (./janitor.ts) deletes expired ones. Not
 * applied to POST /api/v1/tokens: its response holds a secret that is never stored.
 *
 * A retry never runs a change twice. The two ways a first answer can go unstored:
 *
 * - Storing it fails (the database hiccups after the change committed). The client still gets the
 *   real answer. The store is retried in the background (STORE_RETRY_DELAYS_MS) while the claim stays
 *   in progress and keeps being renewed, so a retry meanwhile gets 409 and, once stored, the replay.
 *   If every attempt fails, the key is marked `answer_lost`: retries get 409 IDEMPOTENCY_ANSWER_LOST
 *   (read the resource to see its state; a new key runs the request again). If even that mark fails,
 *   the claim stays in progress, is no longer renewed, and is settled like a dead one (below), whose
 *   audit entry shows the change was made. A warn line says which; it never holds the body.
 *
 * - The request dies (crash, kill -9, lost node) with its claim in progress. No duration proves a
 *   request dead — a deploy with ?wait= runs for minutes, and the former rule (a claim older than 5
 *   minutes is abandoned) ran such a live request a second time. So a running request proves it is
 *   alive: it renews its claim every HEARTBEAT_INTERVAL_MS (10 s), and only a claim not renewed for
 *   DEAD_AFTER_MS (2 min) is dead. A dead claim is then settled by what the database knows of its
 *   request: every mutation writes its audit success entry in the transaction of its change, so
 *     - a success entry with the claim's request id → the change committed: `answer_lost`, never run again;
 *     - none → nothing was committed: the claim is dropped and the retry runs the request, for the first time.
 *   A claim without a request id (written before this rule) is never run again.
 *   What remains: a request alive yet unable to renew for 2 minutes that commits afterwards (a process
 *   frozen with its transaction open), and what a dead request changed outside the database before its
 *   audit entry committed (deploys record the revision and its entry before applying; the scaling
 *   tick, which writes its entry last, is a reconciliation and safe to repeat).
 */
import { Elysia, ElysiaCustomStatusResponse } from 'elysia'
import type { Db } from '../../db/client'
import { AppError, fieldPath } from '../../lib/errors'
import { requestIdOf } from '../../lib/http'
import { describeError, type Logger } from '../../lib/logger'
import { actorOf } from '../auth'
import { claimKey, completeKey, DEAD_AFTER_MS, HEARTBEAT_INTERVAL_MS, markAnswerLost, releaseKey, renewClaim, type StoredAnswer } from './store'

export { createIdempotencyJanitor, type IdempotencyJanitor } from './janitor'

const KEY = /^[\x21-\x7e]{1,255}$/
/** Waits between the attempts to store an answer after the first failed: about 4 s in all. */
export const STORE_RETRY_DELAYS_MS: readonly number[] = [200, 800, 3_200]
/** What Bun's Response.json and a string Response carry. */
const JSON_CONTENT_TYPE = 'application/json;charset=utf-8'
const TEXT_CONTENT_TYPE = 'text/plain;charset=utf-8'

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

/** Whether a request to `method path` is made safe to retry by an Idempotency-Key (also said in /docs/json). */
export function honoursIdempotencyKey(method: string, path: string) {
  return method === 'POST' && path.startsWith('/api/') && !path.startsWith('/api/v1/tokens')
}

export interface Heartbeat {
  stop(): void
}

/**
 * Renews claim `id` every `intervalMs` until stopped, until the claim is no longer in progress, or
 * after `maxMs` (the key's lifetime: a leaked heartbeat cannot hold a key forever). A failed renewal
 * is only logged: the next one may succeed, and a claim is dead only after many missed ones.
 */
export function startHeartbeat(db: Db, id: number, log: Logger, intervalMs = HEARTBEAT_INTERVAL_MS, maxMs = Number.POSITIVE_INFINITY): Heartbeat {
  const startedAt = Date.now()
  let stopped = false
  const stop = () => {
    stopped = true
    clearInterval(timer)
  }
  const timer = setInterval(async () => {
    if (stopped) return
    if (Date.now() - startedAt > maxMs) return stop()
    try {
      if (!(await renewClaim(db, id))) stop()
    } catch (error) {
      log.warn('could not renew an idempotency key claim', { idempotency_key_id: id, ...describeError(error) })
    }
  }, intervalMs)
  timer.unref?.()
  return { stop }
}

interface Held {
  id: number
  requestId: string
  heartbeat: Heartbeat
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * The bytes Elysia sends for `value` under Bun — objects and arrays as `Response.json` writes them
 * (JSON.stringify; no response schema here has a transform to encode), strings as they are — with
 * their content type, or undefined for what cannot be kept (streams, files).
 */
async function answerOf(value: unknown, status: number, headers: Record<string, unknown>): Promise<StoredAnswer | undefined> {
  const given = typeof headers['content-type'] === 'string' ? headers['content-type'] : undefined
  if (value instanceof Response) {
    return { statusCode: value.status === 200 ? status : value.status, body: await value.clone().text(), contentType: value.headers.get('content-type') ?? given ?? TEXT_CONTENT_TYPE }
  }
  if (typeof value === 'string') return { statusCode: status, body: value, contentType: given ?? TEXT_CONTENT_TYPE }
  if (value !== null && typeof value === 'object' && (Array.isArray(value) || Object.getPrototypeOf(value) === Object.prototype)) {
    return { statusCode: status, body: JSON.stringify(value), contentType: given ?? JSON_CONTENT_TYPE }
  }
  return undefined
}

export interface IdempotencyOptions {
  db: Db
  ttlHours: number
  log: Logger
  /** Timings (defaults: HEARTBEAT_INTERVAL_MS, DEAD_AFTER_MS, STORE_RETRY_DELAYS_MS). */
  heartbeatIntervalMs?: number
  deadAfterMs?: number
  storeRetryDelaysMs?: readonly number[]
}

export function idempotencyPlugin(options: IdempotencyOptions) {
  const { db, log } = options
  const ttlMs = options.ttlHours * 3_600_000
  const retryDelays = options.storeRetryDelaysMs ?? STORE_RETRY_DELAYS_MS
  const claims = new WeakMap<Request, Held>()

  /** After the answer could not be stored at once: retried while the client already has it. */
  async function storeLater(held: Held, answer: StoredAnswer | undefined, firstError: unknown) {
    const fields = { idempotency_key_id: held.id, request_id: held.requestId, status: answer?.statusCode, body_bytes: answer === undefined ? undefined : Buffer.byteLength(answer.body) }
    let lastError = firstError
    if (answer !== undefined) {
      for (const [index, delay] of retryDelays.entries()) {
        await sleep(delay)
        try {
          const stored = await completeKey(db, held.id, answer)
          held.heartbeat.stop()
          if (stored) log.warn('stored an idempotent answer after retrying', { ...fields, attempts: index + 2 })
          else log.warn('an idempotency key claim was taken over as dead while its request ran', fields)
          return
        } catch (error) {
          lastError = error
        }
      }
    }
    held.heartbeat.stop()
    const cause = lastError === undefined ? { reason: 'the answer is not a body that can be replayed' } : describeError(lastError)
    try {
      await markAnswerLost(db, held.id, answer?.statusCode ?? 200)
      log.warn('could not store an idempotent answer: retries with its key are refused with 409 IDEMPOTENCY_ANSWER_LOST', { ...fields, ...cause })
    } catch (error) {
      log.warn('could not store an idempotent answer nor mark it lost: its key stays in progress until the claim is dead, then its audit entries settle it', {
        ...fields,
        ...cause,
        mark_error: describeError(error).error_message ?? describeError(error).error,
      })
    }
  }

  /** Stores the answer before it is sent; on failure, the client gets it anyway and storing goes on in the background. Never throws. */
  async function keep(held: Held, answer: StoredAnswer | undefined) {
    if (answer === undefined) return void storeLater(held, undefined, undefined)
    try {
      const stored = await completeKey(db, held.id, answer)
      held.heartbeat.stop()
      if (!stored) log.warn('an idempotency key claim was taken over as dead while its request ran', { idempotency_key_id: held.id, request_id: held.requestId })
    } catch (error) {
      void storeLater(held, answer, error)
    }
  }

  return new Elysia({ name: 'idempotency' })
    .onBeforeHandle({ as: 'global' }, async ({ request, body }) => {
      const key = request.headers.get('idempotency-key')
      const url = new URL(request.url)
      if (key === null || !honoursIdempotencyKey(request.method, url.pathname)) return
      if (!KEY.test(key)) {
        throw new AppError(422, 'VALIDATION_FAILED', 'Idempotency-Key must be 1–255 printable ASCII characters', [
          { path: fieldPath('headers', '/idempotency-key'), message: 'invalid' },
        ])
      }
      const actor = actorOf(request)
      const requestHash = requestHashOf(url.search, body)
      const requestId = requestIdOf(request)
      const claim = await claimKey(
        db,
        { key, actorTokenId: actor.tokenId ?? 0, method: request.method, path: url.pathname, requestHash, ttlMs, requestId },
        new Date(),
        options.deadAfterMs ?? DEAD_AFTER_MS,
      )
      switch (claim.kind) {
        case 'claimed':
          claims.set(request, { id: claim.id, requestId, heartbeat: startHeartbeat(db, claim.id, log, options.heartbeatIntervalMs, ttlMs) })
          return
        case 'mismatch':
          throw new AppError(422, 'IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different request; use a new key')
        case 'in_progress':
          throw new AppError(409, 'IDEMPOTENCY_IN_PROGRESS', 'A request with this Idempotency-Key is still being processed; retry later')
        case 'answer_lost':
          throw new AppError(
            409,
            'IDEMPOTENCY_ANSWER_LOST',
            'The request with this Idempotency-Key was applied, but its answer could not be stored: read the resource to see its state (a new key runs the request again)',
          )
        case 'replay':
          return new Response(claim.body, {
            status: claim.statusCode,
            headers: {
              'content-type': claim.contentType,
              'idempotent-replayed': 'true',
              'x-request-id': requestIdOf(request),
            },
          })
      }
    })
    // Before the answer is sent, so that a retry arriving after it finds it stored. (Not in a
    // mapResponse hook: Elysia 1.4 runs those on its global error path too, where returning nothing
    // empties the error body.)
    .onAfterHandle({ as: 'global' }, async ({ request, response, set }) => {
      const held = claims.get(request)
      if (held === undefined) return
      const [status, value] =
        response instanceof ElysiaCustomStatusResponse
          ? [response.code as number, response.response]
          : [typeof set.status === 'number' ? set.status : 200, response]
      if (status < 200 || status >= 300) return // a failure: released after the response
      claims.delete(request)
      const answer = await answerOf(value, status, set.headers as Record<string, unknown>).catch(() => undefined)
      await keep(held, answer)
    })
    .onAfterResponse({ as: 'global' }, async ({ request }) => {
      const held = claims.get(request)
      if (held === undefined) return
      claims.delete(request)
      held.heartbeat.stop()
      await releaseKey(db, held.id).catch((error) => log.warn('could not release an idempotency key', { idempotency_key_id: held.id, ...describeError(error) }))
    })
}
