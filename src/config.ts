/**
 * Every setting of the service, read from the environment once at start, validated and typed.
 * The names and defaults are those of the original's README (see env.example); a bad value stops
 * the process with one line naming the variable and what is wrong with it.
 */
import { CronSyntaxError, parseCron } from './modules/scaling/cron'

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`)
    this.name = 'ConfigError'
  }
}

type Env = Record<string, string | undefined>

function read(env: Env, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

function str(env: Env, name: string, fallback: string): string {
  return read(env, name) ?? fallback
}

function optionalStr(env: Env, name: string): string | undefined {
  return read(env, name)
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name)
  if (raw === undefined) return fallback
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number, got "${raw}"`)
  const value = Number(raw)
  if (value < min || value > max) throw new ConfigError(name, `expected ${min}..${max}, got ${value}`)
  return value
}

const TRUE = new Set(['1', 'true', 'yes', 'on'])
const FALSE = new Set(['0', 'false', 'no', 'off'])

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name)
  if (raw === undefined) return fallback
  const lower = raw.toLowerCase()
  if (TRUE.has(lower)) return true
  if (FALSE.has(lower)) return false
  throw new ConfigError(name, `expected true or false, got "${raw}"`)
}

function url(env: Env, name: string, fallback: string, schemes: readonly string[] = ['http:', 'https:']): string {
  const raw = read(env, name) ?? fallback
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    throw new ConfigError(name, `expected a URL, got "${raw}"`)
  }
  if (!schemes.includes(parsed.protocol)) {
    throw new ConfigError(name, `expected a ${schemes.map((s) => s.replace(':', '')).join(' or ')} URL, got "${parsed.protocol}"`)
  }
  return raw.replace(/\/+$/, '')
}

function optionalUrl(env: Env, name: string, schemes?: readonly string[]): string | undefined {
  return read(env, name) === undefined ? undefined : url(env, name, '', schemes)
}

function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = read(env, name)
  if (raw === undefined) return fallback
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `expected one of ${allowed.join(', ')}, got "${raw}"`)
  }
  return raw as T
}

/** A five-field cron expression (minute hour day-of-month month day-of-week). */
function cronPattern(env: Env, name: string, fallback: string): string {
  const raw = str(env, name, fallback)
  try {
    parseCron(raw)
  } catch (error) {
    if (error instanceof CronSyntaxError) throw new ConfigError(name, `expected a 5-field cron expression: ${error.message}`)
    throw error
  }
  return raw
}

function path(env: Env, name: string, fallback: string): string {
  const raw = str(env, name, fallback)
  if (!raw.startsWith('/')) throw new ConfigError(name, `expected a path starting with "/", got "${raw}"`)
  return raw
}

/**
 * A DNS-1123 subdomain: the organisation name goes into a label key (DCM's chart), a label value and
 * the ALB's comma-separated tags, where a comma or a space would corrupt the others.
 */
function dnsSubdomain(env: Env, name: string, fallback: string): string {
  const raw = str(env, name, fallback)
  if (raw.length > 63 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(raw)) {
    throw new ConfigError(name, `expected lowercase letters, digits, "-" and "." (at most 63, alphanumeric at both ends), got "${raw}"`)
  }
  return raw
}

export const DATABASE_URL_SCHEMES = ['mysql:', 'https:'] as const

/** The drivers of mysql:// URLs (DB_DRIVER): Bun's built-in SQL client or mysql2. */
export const MYSQL_DRIVERS = ['bun-sql', 'mysql2'] as const
export type MysqlDriverName = (typeof MYSQL_DRIVERS)[number]
export const DEFAULT_MYSQL_DRIVER: MysqlDriverName = 'bun-sql'

/** DB_DRIVER alone, for code that opens a database without the rest of the configuration (tests, scripts). */
export function mysqlDriver(env: Env = process.env): MysqlDriverName {
  return oneOf(env, 'DB_DRIVER', DEFAULT_MYSQL_DRIVER, MYSQL_DRIVERS)
}

export function loadConfig(env: Env = process.env) {
  const environment = str(env, 'ENV', 'local')
  const isLocal = environment === 'local'
  const databaseUrl = optionalUrl(env, 'DATABASE_URL', DATABASE_URL_SCHEMES)
  const mysqlHost = optionalStr(env, 'MYSQL_HOST')

  const config = {
    env: environment,
    isLocal,
    port: int(env, 'PORT', 8007, 0, 65535),
    logLevel: oneOf(env, 'LOG_LEVEL', 'info', ['debug', 'info', 'warn', 'error', 'silent'] as const),
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    database: {
      /** Overrides the MYSQL_* variables when set: mysql://… (TCP) or https://… (PlanetScale over HTTP). */
      url: databaseUrl,
      /** True when nothing names a database: `bun run dev` and `bun test` then provision a local one. */
      provisionLocal: databaseUrl === undefined && mysqlHost === undefined,
      host: mysqlHost ?? 'localhost',
      readHost: optionalStr(env, 'MYSQL_SLAVE_HOST'),
      port: int(env, 'MYSQL_PORT', 3306, 1, 65535),
      name: str(env, 'MYSQL_DATABASE', 'darwin_ml_serve'),
      username: str(env, 'MYSQL_USERNAME', 'root'),
      password: env.MYSQL_PASSWORD ?? 'password',
      poolSize: int(env, 'DB_POOL_SIZE', 10, 1, 1000),
      /** The client of mysql:// URLs; https:// (PlanetScale) has its own. */
      driver: mysqlDriver(env),
      /**
       * Client-side bound on every statement of a request or worker: a server that stops answering
       * (frozen, partitioned, stuck on a lock) costs at most this, then 503 and a discarded connection.
       */
      statementTimeoutMs: int(env, 'DB_STATEMENT_TIMEOUT_MS', 5_000, 100, 600_000),
      /** The same bound for migrations (an ALTER on a large table may take long); also how long a replica waits for another's migration. */
      migrationTimeoutMs: int(env, 'DB_MIGRATION_TIMEOUT_MS', 300_000, 1_000, 86_400_000),
      migrateOnStart: bool(env, 'MIGRATE_ON_START', true),
      /** SQL migrations to apply instead of the ones built into the service (a drizzle-kit folder). */
      migrationsDir: optionalStr(env, 'MIGRATIONS_DIR'),
    },
    /** Manifest templates to render instead of the built-in ones (a copy of templates/, customised). */
    templatesDir: optionalStr(env, 'TEMPLATES_DIR'),
    dcmUrl: url(env, 'DCM_URL', 'http://localhost:8080'),
    rollout: {
      /** A rollout not complete after this is failed (the original's progress_deadline_seconds). */
      deadlineSeconds: int(env, 'ROLLOUT_DEADLINE_SECONDS', 600, 10, 86_400),
      /** How often in-flight rollouts are checked against the cluster. */
      pollIntervalMs: int(env, 'ROLLOUT_POLL_INTERVAL_MS', 2_000, 50, 600_000),
    },
    cluster: {
      /** Per request to a Kubernetes API server or DCM. */
      requestTimeoutMs: int(env, 'CLUSTER_REQUEST_TIMEOUT_MS', 10_000, 100, 300_000),
      /** Attempts per request when the server is unreachable, answers 5xx/429 or times out. */
      requestAttempts: int(env, 'CLUSTER_REQUEST_ATTEMPTS', 3, 1, 10),
      retryBackoffMs: int(env, 'CLUSTER_RETRY_BACKOFF_MS', 200, 0, 60_000),
    },
    artifactBuilder: {
      url: url(env, 'ARTIFACT_BUILDER_URL', 'http://localhost:8081'),
      publicUrl: url(env, 'ARTIFACT_BUILDER_PUBLIC_URL', 'http://localhost/artifact-builder'),
      timeoutMs: int(env, 'ARTIFACT_BUILDER_TIMEOUT_MS', 10_000, 100, 300_000),
      /** How often pending builds are checked with the builder (the original: every 2 s). */
      pollIntervalMs: int(env, 'ARTIFACT_POLL_INTERVAL_MS', 2_000, 100, 3_600_000),
    },
    githubToken: optionalStr(env, 'GITHUB_TOKEN'),
    telemetry: {
      enabled: bool(env, 'ENABLE_OTEL', !isLocal),
      serviceName: str(env, 'OTEL_SERVICE_NAME', 'darwin-ml-serve'),
      otlpEndpoint: url(env, 'OTEL_EXPORTER_OTLP_ENDPOINT', 'http://localhost:4318'),
    },
    kubeIngressClass: str(env, 'KUBE_INGRESS_CLASS', 'alb'),
    /**
     * Where serves routed by path (ENV=local, or an environment without a domain_suffix) are reached:
     * their service_url is this + `/{serve}/`; empty gives a path relative to the cluster's ingress.
     */
    ingressBaseUrl: str(env, 'INGRESS_BASE_URL', isLocal ? 'http://localhost' : '').replace(/\/+$/, ''),
    registry: {
      containerRegistry: str(env, 'CONTAINER_REGISTRY', 'docker.io'),
      imageRepository: str(env, 'IMAGE_REPOSITORY', 'darwin'),
      imageTag: str(env, 'IMAGE_TAG', 'latest'),
    },
    defaultRuntime: str(env, 'DEFAULT_RUNTIME', 'docker.io/python:3.9-slim'),
    mlflow: {
      trackingUri: optionalUrl(env, 'MLFLOW_TRACKING_URI'),
      username: optionalStr(env, 'MLFLOW_TRACKING_USERNAME'),
      password: optionalStr(env, 'MLFLOW_TRACKING_PASSWORD'),
    },
    deployedService: {
      applicationPort: int(env, 'APPLICATION_PORT', 8000, 1, 65535),
      healthcheckPath: path(env, 'HEALTHCHECK_PATH', '/healthcheck'),
      organizationName: dnsSubdomain(env, 'ORGANIZATION_NAME', 'my-org'),
    },
    istio: {
      enabled: bool(env, 'ENABLE_ISTIO', false),
      serviceName: str(env, 'ISTIO_SERVICE_NAME', 'istio-ingressgateway'),
      namespace: str(env, 'ISTIO_NAMESPACE', 'istio-system'),
    },
    albLogs: {
      enabled: bool(env, 'ALB_LOGS_ENABLED', false),
      bucket: str(env, 'ALB_LOGS_BUCKET', ''),
      prefix: str(env, 'ALB_LOGS_PREFIX', 'alb-logs'),
    },
    jobClusterRuntime: str(env, 'JOB_CLUSTER_RUNTIME', ''),
    auth: {
      /** Off only by an explicit AUTH_ENABLED=false, and only with ENV=local. */
      enabled: bool(env, 'AUTH_ENABLED', true),
      bootstrapAdminUsername: str(env, 'ML_SERVE_BOOTSTRAP_ADMIN_USERNAME', 'admin'),
      bootstrapAdminToken: optionalStr(env, 'ML_SERVE_BOOTSTRAP_ADMIN_TOKEN'),
      /** How long this replica trusts a verified token before looking it up again (0: every request). */
      tokenCacheTtlMs: int(env, 'AUTH_TOKEN_CACHE_TTL_MS', 5_000, 0, 60_000),
    },
    idempotencyTtlHours: int(env, 'IDEMPOTENCY_TTL_HOURS', 24, 1, 24 * 30),
    limits: {
      /** A request body larger than this is refused (413) before it is parsed. */
      maxBodyBytes: int(env, 'MAX_BODY_BYTES', 1_048_576, 1_024, 67_108_864),
      /** Arrays and objects nested deeper than this in a JSON body are refused (422) before it is parsed. */
      maxJsonDepth: int(env, 'MAX_JSON_DEPTH', 32, 8, 256),
      /** A JSON body with more object members and array elements than this, all together, is refused (422) before it is parsed. */
      maxJsonValues: int(env, 'MAX_JSON_VALUES', 10_000, 100, 1_000_000),
    },
    /** Per replica (each process counts its own). Off by default with ENV=test, the test suite's. */
    rateLimit: {
      windowSeconds: int(env, 'RATE_LIMIT_WINDOW_SECONDS', 60, 1, 3_600),
      /** Mutating requests per token per window; 0 turns the limit off. */
      perToken: int(env, 'RATE_LIMIT_PER_TOKEN', environment === 'test' ? 0 : 120, 0, 1_000_000),
      /** Mutating requests per client address per window; 0 turns the limit off. */
      perIp: int(env, 'RATE_LIMIT_PER_IP', environment === 'test' ? 0 : 600, 0, 1_000_000),
      /** Proxies in front that append to X-Forwarded-For; 0: the socket's address is the client's. */
      trustedProxyHops: int(env, 'TRUSTED_PROXY_HOPS', 0, 0, 10),
    },
    scaling: {
      /** Runs the in-process tick job; POST /api/v1/scaling/tick works either way. */
      enabled: bool(env, 'SCALING_ENABLED', true),
      /** When the in-process job ticks, read in UTC. */
      tickCron: cronPattern(env, 'SCALING_TICK_CRON', '* * * * *'),
      /** How long the scheduler's lease outlives a tick: above the tick interval and the longest tick. */
      leaseTtlMs: int(env, 'SCALING_LEASE_TTL_MS', 180_000, 1_000, 86_400_000),
    },
  }
  if (!config.auth.enabled && !isLocal) {
    throw new ConfigError('AUTH_ENABLED', `may be false only with ENV=local (ENV is "${environment}")`)
  }
  if (config.auth.bootstrapAdminToken !== undefined && config.auth.bootstrapAdminToken.length < 24) {
    throw new ConfigError('ML_SERVE_BOOTSTRAP_ADMIN_TOKEN', 'must be at least 24 characters')
  }
  if (config.albLogs.enabled && config.albLogs.bucket === '') {
    throw new ConfigError('ALB_LOGS_BUCKET', 'required when ALB_LOGS_ENABLED is true')
  }
  return config
}

export type Config = ReturnType<typeof loadConfig>
