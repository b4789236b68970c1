/**
 * All tables of the control plane. One table per concept; enums for states.
 * Ids are `bigint … autoincrement` (drizzle's `serial()` breaks on MariaDB); timestamps are
 * DATETIME(3) written by the application in UTC, so the server's time zone never matters.
 */
import { type AnyMySqlColumn, bigint, char, datetime, double, index, int, json, longtext, mysqlEnum, mysqlTable, primaryKey, uniqueIndex, varchar } from 'drizzle-orm/mysql-core'

export const CLUSTER_DRIVERS = ['kubernetes', 'dcm'] as const

const id = () => bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey()
const createdAt = () => datetime('created_at', { mode: 'date', fsp: 3 }).notNull().$defaultFn(() => new Date())
const updatedAt = () =>
  datetime('updated_at', { mode: 'date', fsp: 3 })
    .notNull()
    .$defaultFn(() => new Date())
    .$onUpdateFn(() => new Date())

/** A reference to a serve; `onDelete` says what its deletion does to the referencing row. */
const serveRef = (onDelete: 'cascade' | 'restrict') =>
  bigint('serve_id', { mode: 'number', unsigned: true })
    .notNull()
    .references((): AnyMySqlColumn => serves.id, { onDelete })
/** A reference to an environment; `restrict` makes the environment's DELETE fail while it exists. */
const environmentRef = (onDelete: 'cascade' | 'restrict') =>
  bigint('environment_id', { mode: 'number', unsigned: true })
    .notNull()
    .references(() => environments.id, { onDelete })

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

/**
 * `in_progress`: claimed, its request running (or dead: see src/plugins/idempotency/store.ts);
 * `done`: the answer is stored and replayed; `answer_lost`: the change was applied but its answer
 * could not be stored, so retries are refused (409) rather than run again.
 */
export const IDEMPOTENCY_STATES = ['in_progress', 'done', 'answer_lost'] as const
export type IdempotencyState = (typeof IDEMPOTENCY_STATES)[number]

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
    /** The answer, byte for byte. LONGTEXT (up to 4 GiB): a deploy echoes up to 200 × 32 KiB of environment variables. */
    responseBody: longtext('response_body'),
    contentType: varchar('content_type', { length: 255 }),
    /** The request id of the claiming request: its audit entries tell whether a dead claim's change was applied. */
    requestId: varchar('request_id', { length: 128 }),
    /** Renewed while the claiming request runs; a claim whose heartbeat stopped belongs to a dead request. */
    heartbeatAt: datetime('heartbeat_at', { mode: 'date', fsp: 3 }),
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
export type BackendType = (typeof BACKEND_TYPES)[number]
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
    serveId: serveRef('cascade'),
    environmentId: environmentRef('restrict'),
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
    serveId: serveRef('cascade'),
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

// --- Deployments: immutable revisions, and one in-flight change per (serve, environment) ---

/**
 * `pending`: recorded, being applied by the request that made it; `deploying`: applied, rolling out;
 * `cancelled`: preempted while rolling out (by a rollback, an undeploy or an infra change).
 */
export const DEPLOYMENT_STATUSES = ['pending', 'deploying', 'active', 'failed', 'superseded', 'undeployed', 'cancelled'] as const
export type DeploymentStatus = (typeof DEPLOYMENT_STATUSES)[number]
export const IN_FLIGHT_STATUSES = ['pending', 'deploying'] as const satisfies readonly DeploymentStatus[]
/** `auto-rollback`: made by the rollout tracker when a rollout failed, restoring the revision that was active. */
export const DEPLOYMENT_REASONS = ['deploy', 'rollback', 'infra-update', 'one-click', 'auto-rollback'] as const
export type DeploymentReason = (typeof DEPLOYMENT_REASONS)[number]

/** An api serve's infra config as a revision froze it (the seed's field names). */
export interface ApiInfraSnapshot {
  backend_type: BackendType
  cores: number
  memory: number
  min_replicas: number
  max_replicas: number
  node_capacity_type: NodeCapacityType
  target_cpu_utilization: number
  additional_hosts: string[]
}

/** What a revision froze of the infra config: an api serve's, or a workflow serve's config. */
export type InfraSnapshot = ApiInfraSnapshot | WorkflowServeConfig

export const DEPLOYMENT_STRATEGIES = ['rolling', 'recreate', 'canary'] as const
export type DeploymentStrategy = (typeof DEPLOYMENT_STRATEGIES)[number]

/** How a canary revision is brought in beside the active one (README "Progressive delivery"). */
export interface CanaryConfig {
  /** Traffic percentages, ascending, the last one 100 (the full promotion). */
  steps: number[]
  /** How long the canary must stay healthy at a step before the next one. */
  step_seconds: number
  /** Container restarts of the canary's pods tolerated before it is rolled back. */
  max_restarts: number
  /** How long the canary's pods may take to be ready at a step before it is rolled back. */
  ready_timeout_seconds: number
}

/** The deployment config a revision was made with (the seed's `api_serve_deployment_config`). */
export interface DeploymentConfig {
  deployment_strategy: DeploymentStrategy
  max_surge?: string | number
  max_unavailable?: string | number
  environment_variables: Record<string, string>
  /** false: a failed rollout stays as it failed (no automatic rollback); absent means true. */
  auto_rollback?: boolean
  /** With deployment_strategy `canary`. */
  canary?: CanaryConfig
}

/**
 * One row per revision of a serve (numbered per serve, across environments). Everything that made it
 * — artifact, deployment config, infra snapshot, rendered manifests — is frozen at creation; only the
 * status columns move afterwards. The active revision of (serve, env) is the one with status `active`.
 * History goes with its serve or environment; deleting either while it is live is refused by the services.
 */
export const deployments = mysqlTable(
  'deployments',
  {
    id: id(),
    serveId: serveRef('cascade'),
    environmentId: environmentRef('cascade'),
    revision: int('revision').notNull(),
    reason: mysqlEnum('reason', DEPLOYMENT_REASONS).notNull(),
    /** For a rollback: the revision whose manifests this one restores. */
    rolledBackFrom: int('rolled_back_from'),
    /** For a revision rolled back automatically: the revision serving in its place (an auto-rollback's, or a canary's stable one). */
    rolledBackTo: int('rolled_back_to'),
    artifactVersion: varchar('artifact_version', { length: 64 }).notNull(),
    image: varchar('image', { length: 512 }).notNull(),
    deploymentConfig: json('deployment_config').$type<DeploymentConfig>().notNull(),
    infraSnapshot: json('infra_snapshot').$type<InfraSnapshot>().notNull(),
    /** The RenderedServe applied (manifests, managed secrets, DCM values), exactly as applied. */
    rendered: json('rendered').$type<Record<string, unknown>>().notNull(),
    /** Deterministic YAML of the manifests, for history, diffs and dry runs. */
    manifestsYaml: longtext('manifests_yaml').notNull(),
    status: mysqlEnum('status', DEPLOYMENT_STATUSES).notNull(),
    failureReason: varchar('failure_reason', { length: 2048 }),
    createdBy: varchar('created_by', { length: 100 }).notNull(),
    requestId: varchar('request_id', { length: 128 }).notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    activatedAt: datetime('activated_at', { mode: 'date', fsp: 3 }),
    endedAt: datetime('ended_at', { mode: 'date', fsp: 3 }),
    /** When its objects reached the cluster (the apply succeeded, or failed after applying some). */
    appliedAt: datetime('applied_at', { mode: 'date', fsp: 3 }),
    /** When an undeploy removed its objects again: applied and not removed = the cluster may hold them. */
    removedAt: datetime('removed_at', { mode: 'date', fsp: 3 }),
  },
  (table) => [
    uniqueIndex('deployments_serve_revision').on(table.serveId, table.revision),
    index('deployments_serve_env').on(table.serveId, table.environmentId, table.revision),
    index('deployments_status').on(table.status),
  ],
)
export type DeploymentRow = typeof deployments.$inferSelect

export const CHANGE_OPERATIONS = ['deploy', 'rollback', 'infra-update', 'one-click', 'undeploy', 'auto-rollback'] as const
export type ChangeOperation = (typeof CHANGE_OPERATIONS)[number]

/**
 * The change in flight for (serve, environment), if any: the primary key makes a second one fail,
 * across every replica. Held from the request until the rollout ends (released by whoever ends it).
 */
export const changeLocks = mysqlTable(
  'change_locks',
  {
    serveId: serveRef('cascade'),
    environmentId: environmentRef('cascade'),
    operation: mysqlEnum('operation', CHANGE_OPERATIONS).notNull(),
    /** The revision being rolled out (none for an undeploy). */
    deploymentId: bigint('deployment_id', { mode: 'number', unsigned: true }),
    requestId: varchar('request_id', { length: 128 }).notNull(),
    acquiredAt: datetime('acquired_at', { mode: 'date', fsp: 3 }).notNull(),
    /** A lock whose holder died is taken over after this. */
    expiresAt: datetime('expires_at', { mode: 'date', fsp: 3 }).notNull(),
  },
  (table) => [primaryKey({ columns: [table.serveId, table.environmentId] })],
)

// --- Progressive delivery ---

/**
 * `stepping`: the canary runs beside the stable revision at `weight` %; `promoting`: its full render
 * was applied and it rolls out as a whole; `promoted`, `rolled-back`, `aborted`: ended.
 */
export const CANARY_PHASES = ['stepping', 'promoting', 'promoted', 'rolled-back', 'aborted'] as const
export type CanaryPhase = (typeof CANARY_PHASES)[number]

/**
 * A canary revision's progress, one row per revision deployed with the canary strategy beside an
 * active one. The rollout tracker moves it (on any replica: conditional updates on `step_index`), so
 * a restart resumes it where it was.
 */
export const canaryRollouts = mysqlTable('canary_rollouts', {
  deploymentId: bigint('deployment_id', { mode: 'number', unsigned: true })
    .primaryKey()
    .references(() => deployments.id, { onDelete: 'cascade' }),
  /** The active revision the canary runs beside. */
  stableDeploymentId: bigint('stable_deployment_id', { mode: 'number', unsigned: true }).notNull(),
  phase: mysqlEnum('phase', CANARY_PHASES).notNull(),
  stepIndex: int('step_index').notNull(),
  weight: int('weight').notNull(),
  /** The canary's replicas as last applied (in proportion to the stable side's). */
  canaryReplicas: int('canary_replicas').notNull(),
  stepStartedAt: datetime('step_started_at', { mode: 'date', fsp: 3 }).notNull(),
  /** Since when every canary pod has been ready at this step; null while not. */
  healthySince: datetime('healthy_since', { mode: 'date', fsp: 3 }),
  /** For an infra change's canary: the config stored before it, given back when it is aborted or rolled back. */
  restoreInfra: json('restore_infra').$type<InfraSnapshot>(),
  /** One actor at a time changes a canary (a tracker on any replica, or a promote or abort): held until then. */
  leaseUntil: datetime('lease_until', { mode: 'date', fsp: 3 }),
  updatedAt: updatedAt(),
})
export type CanaryRolloutRow = typeof canaryRollouts.$inferSelect

export const DEPLOYMENT_EVENT_KINDS = ['canary-started', 'canary-step', 'canary-promoted', 'canary-rolled-back', 'canary-aborted', 'rollout-failed', 'auto-rollback', 'removed'] as const
export type DeploymentEventKind = (typeof DEPLOYMENT_EVENT_KINDS)[number]

/** What happened to a revision after it was recorded, by whom: each canary step and every automatic decision. */
export const deploymentEvents = mysqlTable(
  'deployment_events',
  {
    id: id(),
    deploymentId: bigint('deployment_id', { mode: 'number', unsigned: true })
      .notNull()
      .references(() => deployments.id, { onDelete: 'cascade' }),
    at: datetime('at', { mode: 'date', fsp: 3 }).notNull(),
    kind: mysqlEnum('kind', DEPLOYMENT_EVENT_KINDS).notNull(),
    /** The canary's traffic share after the event, when it has one. */
    weight: int('weight'),
    actor: varchar('actor', { length: 100 }).notNull(),
    detail: varchar('detail', { length: 2048 }).notNull(),
  },
  (table) => [index('deployment_events_deployment').on(table.deploymentId, table.id)],
)
export type DeploymentEventRow = typeof deploymentEvents.$inferSelect

// --- Scheduled scaling ---

/** Per (serve, environment): windows of replica bounds (see src/modules/scaling/windows.ts). */
export const scalingSchedules = mysqlTable(
  'scaling_schedules',
  {
    id: id(),
    serveId: serveRef('cascade'),
    environmentId: environmentRef('cascade'),
    timezone: varchar('timezone', { length: 64 }).notNull(),
    windows: json('windows').$type<ScalingWindowRow[]>().notNull(),
    /** The bounds last set on the cluster (by a deploy or a tick); null until one of them has. */
    appliedMin: int('applied_min'),
    appliedMax: int('applied_max'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (table) => [uniqueIndex('scaling_schedules_serve_environment').on(table.serveId, table.environmentId)],
)
export interface ScalingWindowRow {
  name: string
  /** 5-field cron: when the window opens. */
  start: string
  /** 5-field cron: when it closes (the first occurrence after the start). Exclusive with duration_minutes. */
  end?: string
  /** How long it stays open after each start, in elapsed minutes. Exclusive with end. */
  duration_minutes?: number
  min_replicas: number
  max_replicas: number
}

export const SCALING_EVENT_OUTCOMES = ['applied', 'failed'] as const

/** Every bounds change a tick made (or failed to make). */
export const scalingEvents = mysqlTable(
  'scaling_events',
  {
    id: id(),
    serveId: serveRef('cascade'),
    environmentId: environmentRef('cascade'),
    at: datetime('at', { mode: 'date', fsp: 3 }).notNull(),
    fromMin: int('from_min'),
    fromMax: int('from_max'),
    toMin: int('to_min').notNull(),
    toMax: int('to_max').notNull(),
    windows: json('windows').$type<string[]>().notNull(),
    outcome: mysqlEnum('outcome', SCALING_EVENT_OUTCOMES).notNull(),
    error: varchar('error', { length: 2048 }),
  },
  (table) => [index('scaling_events_serve_env_at').on(table.serveId, table.environmentId, table.at)],
)
