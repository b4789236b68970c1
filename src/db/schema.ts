/**
 * All tables of the control plane. One table per concept; enums for states.
 * Ids are `bigint … autoincrement` (drizzle's `serial()` breaks on MariaDB); timestamps are
 * DATETIME(3) written by the application in UTC, so the server's time zone never matters.
 */
import { bigint, char, datetime, double, index, int, json, mysqlEnum, mysqlTable, text, uniqueIndex, varchar } from 'drizzle-orm/mysql-core'

export const CLUSTER_DRIVERS = ['kubernetes', 'dcm'] as const

const id = () => bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey()
const createdAt = () => datetime('created_at', { mode: 'date', fsp: 3 }).notNull().$defaultFn(() => new Date())
const updatedAt = () =>
  datetime('updated_at', { mode: 'date', fsp: 3 })
    .notNull()
    .$defaultFn(() => new Date())
    .$onUpdateFn(() => new Date())

export const environments = mysqlTable('environments', {
  id: id(),
  name: varchar('name', { length: 63 }).notNull().unique(),
  domainSuffix: varchar('domain_suffix', { length: 253 }).notNull(),
  clusterName: varchar('cluster_name', { length: 253 }).notNull(),
  namespace: varchar('namespace', { length: 63 }).notNull(),
  securityGroup: varchar('security_group', { length: 1024 }).notNull().default(''),
  subnets: varchar('subnets', { length: 1024 }).notNull().default(''),
  ftRedisUrl: varchar('ft_redis_url', { length: 1024 }).notNull().default(''),
  workflowUrl: varchar('workflow_url', { length: 1024 }).notNull().default(''),
  clusterDriver: mysqlEnum('cluster_driver', CLUSTER_DRIVERS).notNull().default('kubernetes'),
  /** kubeconfig context to use for this environment (Kubernetes driver); empty = current/in-cluster. */
  kubeContext: varchar('kube_context', { length: 253 }).notNull().default(''),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
})

export type EnvironmentRow = typeof environments.$inferSelect

// --- Trust: API tokens, audit log, idempotency keys ---

export const TOKEN_SCOPES = ['read', 'write', 'deploy', 'admin'] as const
export type TokenScope = (typeof TOKEN_SCOPES)[number]

/** Bearer tokens. Only a SHA-256 of the token is stored; the token itself is shown once, at creation. */
export const apiTokens = mysqlTable('api_tokens', {
  id: id(),
  name: varchar('name', { length: 100 }).notNull().unique(),
  tokenHash: char('token_hash', { length: 64 }).notNull().unique(),
  /** The first characters of the token, to recognise it in lists without revealing it. */
  tokenPrefix: varchar('token_prefix', { length: 16 }).notNull(),
  scopes: json('scopes').$type<TokenScope[]>().notNull(),
  createdBy: varchar('created_by', { length: 100 }).notNull(),
  createdAt: createdAt(),
  expiresAt: datetime('expires_at', { mode: 'date', fsp: 3 }),
  lastUsedAt: datetime('last_used_at', { mode: 'date', fsp: 3 }),
  revokedAt: datetime('revoked_at', { mode: 'date', fsp: 3 }),
})
export type ApiTokenRow = typeof apiTokens.$inferSelect

export const AUDIT_OUTCOMES = ['success', 'failure'] as const

/** One row per mutation: successes are written in the same transaction as the change. */
export const auditLog = mysqlTable(
  'audit_log',
  {
    id: id(),
    at: datetime('at', { mode: 'date', fsp: 3 }).notNull().$defaultFn(() => new Date()),
    actorTokenId: bigint('actor_token_id', { mode: 'number', unsigned: true }),
    actorName: varchar('actor_name', { length: 100 }).notNull(),
    /** The operation, as `METHOD /route/:pattern`. */
    action: varchar('action', { length: 200 }).notNull(),
    resourceType: varchar('resource_type', { length: 50 }).notNull(),
    resourceName: varchar('resource_name', { length: 255 }).notNull(),
    outcome: mysqlEnum('outcome', AUDIT_OUTCOMES).notNull(),
    statusCode: int('status_code').notNull(),
    requestId: varchar('request_id', { length: 128 }).notNull(),
    /** What changed, without secrets. */
    summary: json('summary').$type<Record<string, unknown>>().notNull(),
  },
  (table) => [
    index('audit_log_resource').on(table.resourceType, table.resourceName, table.at),
    index('audit_log_actor').on(table.actorName, table.at),
    index('audit_log_at').on(table.at),
  ],
)
export type AuditRow = typeof auditLog.$inferSelect

export const IDEMPOTENCY_STATES = ['in_progress', 'done'] as const

/** The first response to a POST carrying an Idempotency-Key, replayed to retries with the same key and body. */
export const idempotencyKeys = mysqlTable(
  'idempotency_keys',
  {
    id: id(),
    key: varchar('idempotency_key', { length: 255 }).notNull(),
    /** Keys are per token: one caller can never replay another's response. */
    actorTokenId: bigint('actor_token_id', { mode: 'number', unsigned: true }).notNull(),
    method: varchar('method', { length: 10 }).notNull(),
    path: varchar('path', { length: 1024 }).notNull(),
    requestHash: char('request_hash', { length: 64 }).notNull(),
    state: mysqlEnum('state', IDEMPOTENCY_STATES).notNull(),
    statusCode: int('status_code'),
    responseBody: text('response_body'),
    createdAt: createdAt(),
    expiresAt: datetime('expires_at', { mode: 'date', fsp: 3 }).notNull(),
  },
  (table) => [
    uniqueIndex('idempotency_keys_actor_key').on(table.actorTokenId, table.key),
    index('idempotency_keys_expires').on(table.expiresAt),
  ],
)

// --- Serves, their per-environment infra configs, and their artifacts ---

export const SERVE_TYPES = ['api', 'workflow'] as const
export type ServeType = (typeof SERVE_TYPES)[number]

export const serves = mysqlTable(
  'serves',
  {
    id: id(),
    name: varchar('name', { length: 32 }).notNull().unique(),
    type: mysqlEnum('type', SERVE_TYPES).notNull(),
    description: varchar('description', { length: 1024 }).notNull().default(''),
    space: varchar('space', { length: 100 }).notNull().default(''),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (table) => [index('serves_space').on(table.space)],
)
export type ServeRow = typeof serves.$inferSelect

export const BACKEND_TYPES = ['fastapi', 'ray'] as const
export const NODE_CAPACITY_TYPES = ['spot', 'ondemand'] as const
export type NodeCapacityType = (typeof NODE_CAPACITY_TYPES)[number]

/** A Ray job cluster for a workflow serve: the original's `workflow_serve_config`. */
export interface WorkflowServeConfig {
  schedule: string
  head_node_config: { cores: number; memory: number; node_capacity_type: NodeCapacityType }
  worker_node_config: {
    cores_per_pods: number
    memory_per_pods: number
    min_pods: number
    max_pods: number
    node_capacity_type: NodeCapacityType
  }[]
}

/**
 * One row per (serve, environment). API serves fill the typed columns; workflow serves fill
 * `workflow_config` instead (which kind is given by the serve's type). Deleting a serve removes
 * its configs; deleting an environment that still has configs is refused by the foreign key.
 */
export const infraConfigs = mysqlTable(
  'infra_configs',
  {
    id: id(),
    serveId: bigint('serve_id', { mode: 'number', unsigned: true })
      .notNull()
      .references(() => serves.id, { onDelete: 'cascade' }),
    environmentId: bigint('environment_id', { mode: 'number', unsigned: true })
      .notNull()
      .references(() => environments.id, { onDelete: 'restrict' }),
    backendType: mysqlEnum('backend_type', BACKEND_TYPES),
    cores: double('cores'),
    /** GiB. */
    memory: double('memory'),
    minReplicas: int('min_replicas'),
    maxReplicas: int('max_replicas'),
    nodeCapacityType: mysqlEnum('node_capacity_type', NODE_CAPACITY_TYPES),
    targetCpuUtilization: int('target_cpu_utilization'),
    additionalHosts: json('additional_hosts').$type<string[]>(),
    workflowConfig: json('workflow_config').$type<WorkflowServeConfig>(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (table) => [uniqueIndex('infra_configs_serve_environment').on(table.serveId, table.environmentId)],
)
export type InfraConfigRow = typeof infraConfigs.$inferSelect

export const ARTIFACT_SOURCES = ['build', 'prebuilt'] as const
export const ARTIFACT_STATUSES = ['queued', 'building', 'succeeded', 'failed'] as const
export type ArtifactStatus = (typeof ARTIFACT_STATUSES)[number]
export const PENDING_ARTIFACT_STATUSES = ['queued', 'building'] as const satisfies readonly ArtifactStatus[]

/** A deployable image of a serve: built by the Artifact Builder from git, or registered prebuilt. */
export const artifacts = mysqlTable(
  'artifacts',
  {
    id: id(),
    serveId: bigint('serve_id', { mode: 'number', unsigned: true })
      .notNull()
      .references(() => serves.id, { onDelete: 'cascade' }),
    version: varchar('version', { length: 64 }).notNull(),
    source: mysqlEnum('source', ARTIFACT_SOURCES).notNull(),
    githubRepoUrl: varchar('github_repo_url', { length: 512 }),
    branch: varchar('branch', { length: 255 }),
    commit: varchar('commit', { length: 40 }),
    dockerfilePath: varchar('dockerfile_path', { length: 512 }),
    /** The image reference: given for prebuilt artifacts, set when a build succeeds. */
    image: varchar('image', { length: 512 }),
    status: mysqlEnum('status', ARTIFACT_STATUSES).notNull(),
    builderTaskId: varchar('builder_task_id', { length: 255 }),
    failureReason: varchar('failure_reason', { length: 2048 }),
    logsUrl: varchar('logs_url', { length: 2048 }),
    /** When the poller last claimed this build; replicas skip builds claimed within the interval. */
    statusCheckedAt: datetime('status_checked_at', { mode: 'date', fsp: 3 }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (table) => [
    uniqueIndex('artifacts_serve_version').on(table.serveId, table.version),
    index('artifacts_serve_created').on(table.serveId, table.createdAt),
    index('artifacts_status_checked').on(table.status, table.statusCheckedAt),
  ],
)
export type ArtifactRow = typeof artifacts.$inferSelect

// --- Leases: one replica of the control plane acts at a time ---

/**
 * A named lease held by one process until `expires_at`; the holder renews it, anyone may take it once
 * it has expired (its holder died). Times are written by the application, like every timestamp here.
 */
export const leases = mysqlTable('leases', {
  name: varchar('name', { length: 100 }).primaryKey(),
  holder: varchar('holder', { length: 255 }).notNull(),
  expiresAt: datetime('expires_at', { mode: 'date', fsp: 3 }).notNull(),
  /** When the current holder took it (unchanged by renewals). */
  acquiredAt: datetime('acquired_at', { mode: 'date', fsp: 3 }).notNull(),
  renewedAt: datetime('renewed_at', { mode: 'date', fsp: 3 }).notNull(),
})
export type LeaseRow = typeof leases.$inferSelect
