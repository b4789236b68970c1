/**
 * The HTTP conventions every route shares: the success and error envelopes (compatible with the
 * original's `{status, message, data}`), their TypeBox schemas for the docs, and the plugin that
 * turns every thrown error into the error envelope and logs one line per request.
 */
import { Kind } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { Elysia, type TSchema, t, ValidationError } from 'elysia'
import { AppError, ERROR_CODES, type ErrorCode, type FieldError, fieldPath, isDatabaseUnavailable, type RequestPart } from './errors'
import { describeError, type Logger } from './logger'
import type { Page } from './pagination'
import { Named, StringEnum } from './schema'
import { nameRequestSpan, telemetryEnabled, traceRequest } from './telemetry'

export const ok = <T>(data: T, message = 'OK') => ({ status: 'SUCCESS' as const, message, data })

export const okPage = <T>(page: Page<T>, message = 'OK') => ({
  status: 'SUCCESS' as const,
  message,
  data: page.items,
  pagination: { page: page.page, limit: page.limit, total: page.total },
})

export const Envelope = <T extends TSchema>(data: T, example?: unknown) =>
  t.Object(
    { status: t.Literal('SUCCESS'), message: t.String(), data },
    example === undefined ? {} : { examples: [{ status: 'SUCCESS', message: 'OK', data: example }] },
  )

const Pagination = Named(
  'Pagination',
  t.Object({ page: t.Integer({ description: 'This page, from 1' }), limit: t.Integer({ description: 'Items per page' }), total: t.Integer({ description: 'Items in all pages' }) }),
)

export const PageEnvelope = <T extends TSchema>(item: T) =>
  t.Object({
    status: t.Literal('SUCCESS'),
    message: t.String(),
    data: t.Array(item),
    pagination: Pagination,
  })

/**
 * A route option (in `detail`) for a 200 that is also given as YAML on `Accept: application/yaml`:
 * its value describes that form, which /docs/json then lists beside the JSON one.
 */
export const YAML_ANSWER = 'x-yaml-answer'

/** Every error answer; `Error` in /docs/json, where each status's response gives an example per code. */
export const ErrorEnvelope = Named(
  'Error',
  t.Object(
    {
      status: t.Literal('ERROR'),
      code: StringEnum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]], { description: 'Stable machine-readable error code' }),
      message: t.String({ description: 'For people; may change' }),
      errors: t.Optional(
        t.Array(t.Object({ path: t.String(), message: t.String() }), {
          description: 'The failing fields: `path` is a JSON Pointer (body fields from the root; `/query/…`, `/params/…`, `/headers/…` for the other parts)',
        }),
      ),
      request_id: t.String({ description: 'Also the `x-request-id` header; finds the request in the logs' }),
    },
    { description: 'Every error answer: a stable `code`, a message, the failing fields (422), the request id' },
  ),
)

/**
 * The error responses an /api route documents: a missing token (401) or scope (403), bad input (422)
 * and a database outage or an unconfigured cluster (503) are possible everywhere; a route adds its
 * own: every non-GET route uses `mutationErrorResponses` below (the body is parsed for every one of
 * them, a schema or not), 409 on every POST but /tokens (an Idempotency-Key in use), and what its
 * service and what it calls can answer (404, 409, 502, 504…). test/support/openapi-contract.ts fails
 * any test that sees a status its operation does not list.
 */
export const errorResponses = (...statuses: number[]) =>
  Object.fromEntries([401, 403, 422, 503, ...statuses].map((status) => [status, ErrorEnvelope]))

/**
 * What every route that takes a body — every POST, PUT, PATCH and DELETE — can answer besides its
 * own statuses: 400 a malformed body, 413 a body over MAX_BODY_BYTES, 415 a body that is not
 * application/json, 429 over a rate limit (src/plugins/limits, src/plugins/rate-limit).
 */
export const mutationErrorResponses = (...statuses: number[]) => errorResponses(400, 413, 415, 429, ...statuses)

/** The request's path and query parameters as the router and the query parser left them. */
interface RawParameters {
  params?: Record<string, unknown>
  query?: Record<string, unknown>
}

const escapePointer = (name: string) => name.replaceAll('~', '~0').replaceAll('/', '~1')

/**
 * Elysia checks the range of a numeric path or query parameter after coercing it (`?limit=0`,
 * `/deployments/0`), and that error (type `property`) names neither the part nor the field. They are
 * found by the value: the parameters still undecoded (strings) whose value is the refused one — and,
 * should several be, that the refused schema also refuses. Falls back to `/` when none is found.
 */
function coercedParameterPaths(error: ValidationError, raw: RawParameters): string[] {
  const candidates: { path: string; value: unknown }[] = []
  for (const part of ['params', 'query'] as const) {
    for (const [name, value] of Object.entries(raw[part] ?? {})) {
      if (typeof value !== 'string') continue // decoded already: it passed
      const coerced = value.trim() === '' ? Number.NaN : Number(value)
      if (value === error.value || coerced === error.value) candidates.push({ path: fieldPath(part, `/${escapePointer(name)}`), value: coerced })
    }
  }
  const schema = error.validator
  const refused =
    candidates.length > 1 && schema !== null && typeof schema === 'object' && Kind in schema
      ? candidates.filter((candidate) => !Value.Check(schema as TSchema, candidate.value))
      : candidates
  const paths = (refused.length > 0 ? refused : candidates).map((candidate) => candidate.path)
  return paths.length > 0 ? paths : ['/']
}

function fieldErrors(error: ValidationError, raw: RawParameters): FieldError[] {
  const seen = new Set<string>()
  const out: FieldError[] = []
  for (const issue of error.all) {
    const pointer = 'path' in issue && typeof issue.path === 'string' ? issue.path : ''
    const message = 'message' in issue && typeof issue.message === 'string' ? issue.message : 'invalid value'
    // Elysia names the part (body, query, params, headers); the path says it in the one form.
    const paths = error.type === 'property' ? coercedParameterPaths(error, raw) : [fieldPath(error.type as RequestPart, pointer)]
    for (const path of paths) {
      // A union reports every branch it tried; one line per field is what a person can act on.
      if (seen.has(path)) continue
      seen.add(path)
      out.push({ path, message })
    }
  }
  return out
}

interface RequestState {
  id: string
  startedAt: number
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/
/** What a 503 DATABASE_UNAVAILABLE tells clients to wait: about one statement timeout plus a reconnect. */
export const DATABASE_RETRY_AFTER_SECONDS = '5'
const requests = new WeakMap<Request, RequestState>()

/** The id given to (or brought by) this request; also in the `x-request-id` response header. */
export const requestIdOf = (request: Request) => requests.get(request)?.id ?? 'unknown'

/** Request ids, the error envelope, the access log and the request span, for the whole app (global scope). */
export function httpConventions(log: Logger) {
  const requestId = requestIdOf

  return new Elysia({ name: 'http-conventions' })
    // wrap() puts the whole request — every hook, handler and error path — inside the span's context,
    // which lifecycle hooks alone cannot do. Elysia types the wrapped handler loosely (Function).
    .wrap((handle) =>
      telemetryEnabled()
        ? (request: Request) => traceRequest(request, () => requestId(request), () => handle(request) as unknown as Promise<Response>)
        : handle,
    )
    .onTransform({ as: 'global' }, ({ request, route }) => nameRequestSpan(request.method, route))
    .onRequest(({ request, set }) => {
      const given = request.headers.get('x-request-id')
      const id = given && REQUEST_ID.test(given) ? given : crypto.randomUUID()
      requests.set(request, { id, startedAt: performance.now() })
      set.headers['x-request-id'] = id
    })
    .onError({ as: 'global' }, ({ code, error, set, request, params, query }) => {
      const envelope = (errorCode: ErrorCode, message: string, errors?: FieldError[]) => {
        set.status = ERROR_CODES[errorCode].status
        set.headers['content-type'] = 'application/json'
        set.headers['x-request-id'] = requestId(request)
        return { status: 'ERROR' as const, code: errorCode, message, ...(errors ? { errors } : {}), request_id: requestId(request) }
      }
      // An AppError thrown by a body parser (src/plugins/limits) arrives wrapped in Elysia's ParseError.
      const appError = error instanceof AppError ? error : code === 'PARSE' && (error as Error).cause instanceof AppError ? ((error as Error).cause as AppError) : undefined
      if (appError) {
        // A 5xx is a dependency's failure (cluster, builder, MLflow, configuration): its cause belongs in the log.
        if (appError.status >= 500) log.warn('request failed', { request_id: requestId(request), status: appError.status, code: appError.code, error_message: appError.message })
        return envelope(appError.code, appError.message, appError.errors)
      }
      if (error instanceof ValidationError) return envelope('VALIDATION_FAILED', 'Request validation failed', fieldErrors(error, { params, query }))
      if (code === 'NOT_FOUND') return envelope('ROUTE_NOT_FOUND', `No route ${request.method} ${new URL(request.url).pathname}`)
      if (code === 'PARSE') return envelope('MALFORMED_BODY', 'The request body could not be parsed')
      if (isDatabaseUnavailable(error)) {
        log.warn('database unavailable', { request_id: requestId(request), ...describeError(error) })
        set.headers['retry-after'] = DATABASE_RETRY_AFTER_SECONDS
        return envelope('DATABASE_UNAVAILABLE', 'The database is unavailable; retry later')
      }
      log.error('unhandled error', { request_id: requestId(request), ...describeError(error) })
      return envelope('INTERNAL_ERROR', 'Internal error')
    })
    .onAfterResponse({ as: 'global' }, ({ request, set }) => {
      const state = requests.get(request)
      const status = typeof set.status === 'number' ? set.status : 200
      log[status >= 500 ? 'warn' : 'info']('request', {
        request_id: state?.id,
        method: request.method,
        path: new URL(request.url).pathname,
        status,
        duration_ms: state ? Math.round((performance.now() - state.startedAt) * 100) / 100 : undefined,
      })
    })
}
