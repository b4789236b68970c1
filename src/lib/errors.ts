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

/**
 * Every error code the API answers, with its one HTTP status and what it means. The error envelope's
 * `code` is documented as this enum (/docs/json), and `AppError` only takes a code with the status
 * given here: a code cannot be answered with two statuses, nor a new one go undocumented.
 */
export const ERROR_CODES = {
  MALFORMED_BODY: { status: 400, description: 'The body is not well-formed JSON' },
  UNAUTHENTICATED: { status: 401, description: 'No bearer token, or one that is unknown, expired or revoked' },
  FORBIDDEN: { status: 403, description: "The token lacks the operation's scope" },
  NOT_FOUND: { status: 404, description: 'A named resource (serve, environment, artifact, revision, …) does not exist' },
  ROUTE_NOT_FOUND: { status: 404, description: 'No route has this method and path' },
  ALREADY_EXISTS: { status: 409, description: 'A resource with this name exists' },
  ALREADY_DEPLOYED: { status: 409, description: 'This model is already deployed with these settings' },
  ARTIFACT_NOT_READY: { status: 409, description: 'The artifact has not been built successfully' },
  CHANGE_IN_PROGRESS: { status: 409, description: 'Another change of this serve in this environment is in progress; retry when it ends' },
  DCM_UNSUPPORTED: { status: 409, description: 'The environment uses DCM, whose chart cannot express this' },
  ENVIRONMENT_IN_USE: { status: 409, description: 'Infra configs or deployments still reference the environment' },
  IDEMPOTENCY_ANSWER_LOST: { status: 409, description: 'The keyed request was applied but its answer could not be stored' },
  IDEMPOTENCY_IN_PROGRESS: { status: 409, description: 'A request with this Idempotency-Key is still running' },
  INFRA_CONFIG_MISSING: { status: 409, description: 'The serve has no infra config for the environment' },
  NOTHING_TO_ROLL_BACK_TO: { status: 409, description: 'No earlier active revision exists' },
  NO_CANARY: { status: 409, description: 'No canary runs in this environment: nothing to promote or abort' },
  NOT_SCALABLE: { status: 409, description: 'A workflow serve has no replicas to schedule' },
  NO_INFRA_CONFIG: { status: 409, description: 'The serve has no infra config for the environment' },
  REVISION_FAILED: { status: 409, description: 'The revision failed or was cancelled; roll back to it with "force": true' },
  SERVE_DEPLOYED: { status: 409, description: 'The serve is deployed somewhere; undeploy it first' },
  SERVE_TYPE_MISMATCH: { status: 409, description: 'The serve exists with another type' },
  PAYLOAD_TOO_LARGE: { status: 413, description: 'The body is larger than MAX_BODY_BYTES' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, description: 'The body is not application/json' },
  VALIDATION_FAILED: { status: 422, description: 'A field is invalid: `errors` names each one (a JSON Pointer) and why' },
  BUILD_REJECTED: { status: 422, description: 'The Artifact Builder refused the build' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, description: 'This Idempotency-Key was used with a different request' },
  MODEL_NOT_FOUND: { status: 422, description: 'The model is not in MLflow' },
  RATE_LIMITED: { status: 429, description: 'Too many changes from this token or address; see Retry-After' },
  INTERNAL_ERROR: { status: 500, description: 'A bug: the request id finds it in the log' },
  CLUSTER_FAILED: { status: 502, description: 'The cluster refused or failed the change; nothing is left half-done and the request can be retried' },
  DEPENDENCY_FAILED: { status: 502, description: 'The Artifact Builder or MLflow failed' },
  CLUSTER_NOT_CONFIGURED: { status: 503, description: 'No cluster can be reached for the environment' },
  DATABASE_UNAVAILABLE: { status: 503, description: 'The database is unavailable; see Retry-After' },
  ROLLOUT_TIMEOUT: { status: 504, description: 'The rollout had not ended when ?wait= ran out; it goes on' },
} as const satisfies Record<string, { status: number; description: string }>

export type ErrorCode = keyof typeof ERROR_CODES
/** The status a code is answered with. */
export type StatusOf<C extends ErrorCode> = (typeof ERROR_CODES)[C]['status']

export class AppError<C extends ErrorCode = ErrorCode> extends Error {
  constructor(
    readonly status: StatusOf<C>,
    readonly code: C,
    message: string,
    readonly errors?: FieldError[],
  ) {
    super(message)
    this.name = 'AppError'
  }
}

export const notFound = (what: string, name: string | number) =>
  new AppError(404, 'NOT_FOUND', `${what} with name ${name} not found`)

export const alreadyExists = (message: string) => new AppError(409, 'ALREADY_EXISTS', message)

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
