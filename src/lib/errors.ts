/**
 * The errors a service may throw on purpose. Each carries the HTTP status and a stable machine
 * `code`; the error plugin (src/lib/http.ts) turns them into the one error envelope.
 */

export interface FieldError {
  /** Where the failing value is, in the one form {@link fieldPath} makes: `/environment_configs/namespace`, `/query/to`. */
  path: string
  message: string
}

/** The parts of a request a field error can point into. */
export type RequestPart = 'body' | 'query' | 'params' | 'headers' | 'cookie'

/**
 * The one form of every `FieldError.path`: JSON Pointer syntax (RFC 6901), always with a leading `/`.
 * Body fields sit at the root, as the README and clients know them (`/name`, `/windows/1/start`, `/`
 * for the body itself); every other part of the request is named first (`/query/to`,
 * `/params/serve_name`, `/headers/idempotency-key`). `pointer` is a JSON Pointer into that part
 * (`''` or `'/'` for the part itself; a missing leading `/` is added).
 */
export function fieldPath(part: RequestPart, pointer = ''): string {
  // Tolerant on purpose: this runs inside the error handler, where throwing would turn a 422 into a 500.
  const inner = pointer === '' || pointer === '/' ? '' : pointer.startsWith('/') ? pointer : `/${pointer}`
  if (part === 'body') return inner === '' ? '/' : inner
  return `/${part}${inner}`
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly errors?: FieldError[],
  ) {
    super(message)
    this.name = 'AppError'
  }
}

export const notFound = (what: string, name: string | number) =>
  new AppError(404, 'NOT_FOUND', `${what} with name ${name} not found`)

export const conflict = (message: string, code = 'CONFLICT') => new AppError(409, code, message)

export const invalid = (errors: FieldError[], message = 'Request validation failed') =>
  new AppError(422, 'VALIDATION_FAILED', message, errors)

export const badGateway = (dependency: string, message: string) =>
  new AppError(502, 'DEPENDENCY_FAILED', `${dependency}: ${message}`)

/** The error a driver or pool raises, whether or not drizzle wrapped it in a DrizzleQueryError. */
function rootCause(error: unknown): unknown {
  let current = error
  for (let depth = 0; depth < 5; depth++) {
    const cause = (current as { cause?: unknown } | null)?.cause
    if (cause === undefined || cause === null) return current
    current = cause
  }
  return current
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_ACCESS_DENIED_ERROR',
  'ER_BAD_DB_ERROR',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_DEADLOCK',
  'ER_QUERY_INTERRUPTED',
  'ConnectionRefused',
])

/** True when the database could not be reached or answered "not now" — worth a 503 and a retry. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const cause = rootCause(error) as { code?: unknown; fatal?: unknown; name?: unknown } | null
  if (cause === null || typeof cause !== 'object') return false
  if (typeof cause.code === 'string' && UNAVAILABLE_CODES.has(cause.code)) return true
  if (cause.fatal === true) return true
  // @planetscale/database raises DatabaseError for HTTP failures of its endpoint.
  return cause.name === 'DatabaseError' && /fetch|network|5\d\d/i.test(String((cause as Error).message))
}

/** MySQL's ER_DUP_ENTRY (1062), raised by a unique index. */
export function isDuplicateKey(error: unknown): boolean {
  const cause = rootCause(error) as { code?: unknown; errno?: unknown; message?: unknown } | null
  if (cause === null || typeof cause !== 'object') return false
  return cause.code === 'ER_DUP_ENTRY' || cause.errno === 1062 || /Duplicate entry/.test(String(cause.message))
}

/** MySQL's ER_ROW_IS_REFERENCED_2 (1451): a foreign key still points at the row being deleted. */
export function isStillReferenced(error: unknown): boolean {
  const cause = rootCause(error) as { code?: unknown; errno?: unknown } | null
  return cause !== null && typeof cause === 'object' && (cause.errno === 1451 || cause.code === 'ER_ROW_IS_REFERENCED_2')
}

/** InnoDB chose this transaction as a deadlock victim: running it again is the prescribed answer. */
export function isDeadlock(error: unknown): boolean {
  const cause = rootCause(error) as { code?: unknown; errno?: unknown } | null
  return cause !== null && typeof cause === 'object' && (cause.code === 'ER_LOCK_DEADLOCK' || cause.errno === 1213)
}
