/**
 * The deployment lifecycle: deploy, roll back, redeploy on an infra change, undeploy, and what is
 * deployed where. A change takes the (serve, env) change lock, records an immutable revision with
 * its rendered manifests in the same transaction as its audit entry, then applies it through the
 * environment's cluster driver; the rollout tracker (tracker.ts) follows it to active or failed.
 */
import { createTwoFilesPatch } from 'diff'
import { and, count, desc, eq, inArray, lt, max, type SQL } from 'drizzle-orm'
import { ClusterError, type ClusterTarget, clusterTargetOf } from '../../cluster/driver'
import type { ClusterDrivers } from '../../cluster'
import type { Config } from '../../config'
import type { Db, Executor } from '../../db/client'
import {
  type ArtifactRow,
  artifacts,
  type DeploymentConfig,
  type DeploymentReason,
  type DeploymentRow,
  deployments,
  type EnvironmentRow,
  environments,
  IN_FLIGHT_STATUSES,
  type InfraConfigRow,
  infraConfigs,
  type ServeRow,
  type WorkflowServeConfig,
} from '../../db/schema'
import { AppError, isDeadlock, isDuplicateKey, notFound } from '../../lib/errors'
import type { Logger } from '../../lib/logger'
import { type Page, pageWindow } from '../../lib/pagination'
import { primaryHost, type RenderedServe, type RenderInput, renderedReplicaBounds, renderServe, toYaml } from '../../render'
import type { AuditContext } from '../../lib/audit'
import { recordAudit } from '../../lib/audit-log'
import { findEnvironment } from '../environment/service'
import type { InfraConfigChange } from '../infra-config/service'
import { effectiveReplicaBounds, recordAppliedBounds } from '../scaling/service'
import { findServe } from '../serve/service'
import { acquireChangeLock, attachDeployment, type LockKey, releaseChangeLock } from './locks'
import type { DeploymentModel } from './model'

export interface DeploymentDeps {
  db: Db
  config: Config
  drivers: ClusterDrivers
  log: Logger
}

/** What a revision is made of, frozen into its row. */
interface RevisionInputs {
  artifactVersion: string
  image: string
  deploymentConfig: DeploymentConfig
  /** The serve's infra config in this environment when the revision was made (seed field names). */
  infraSnapshot: Record<string, unknown>
}

interface Subject {
  serve: ServeRow
  environment: EnvironmentRow
}

const lockKey = ({ serve, environment }: Subject): LockKey => ({ serveId: serve.id, environmentId: environment.id })

export const clusterTarget = ({ serve, environment }: Subject): ClusterTarget => clusterTargetOf(serve.name, environment)

export function serviceUrl(config: Config, serve: string, environment: Pick<EnvironmentRow, 'domainSuffix'>) {
  return config.isLocal ? `http://localhost/${serve}/` : `https://${primaryHost(serve, environment.domainSuffix)}`
}

export function toRevision(row: DeploymentRow, config: Config, subject: Subject): DeploymentModel.Revision {
  return {
    revision: row.revision,
    serve_name: subject.serve.name,
    env: subject.environment.name,
    status: row.status,
    reason: row.reason,
    rolled_back_from: row.rolledBackFrom,
    artifact_version: row.artifactVersion,
    image: row.image,
    api_serve_deployment_config: row.deploymentConfig,
    infra_snapshot: row.infraSnapshot,
    service_url: serviceUrl(config, subject.serve.name, subject.environment),
    failure_reason: row.failureReason,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    activated_at: row.activatedAt?.toISOString() ?? null,
    ended_at: row.endedAt?.toISOString() ?? null,
  }
}

// --- Reading what is deployed ---

async function latestWithStatus(db: Executor, subject: Subject, statuses: readonly DeploymentRow['status'][], before?: number) {
  const conditions: SQL[] = [
    eq(deployments.serveId, subject.serve.id),
    eq(deployments.environmentId, subject.environment.id),
    inArray(deployments.status, [...statuses]),
  ]
  if (before !== undefined) conditions.push(lt(deployments.revision, before))
  const [row] = await db.select().from(deployments).where(and(...conditions)).orderBy(desc(deployments.revision)).limit(1)
  return row
}

export const activeRevision = (db: Executor, subject: Subject) => latestWithStatus(db, subject, ['active'])
const inFlightRevision = (db: Executor, subject: Subject) => latestWithStatus(db, subject, IN_FLIGHT_STATUSES)

async function loadSubject(db: Db, serveName: string, envName: string): Promise<Subject> {
  const serve = await findServe(db, serveName)
  const environment = await findEnvironment(db, envName)
  return { serve, environment }
}

async function infraConfigRow(db: Executor, subject: Subject): Promise<InfraConfigRow> {
  const [row] = await db
    .select()
    .from(infraConfigs)
    .where(and(eq(infraConfigs.serveId, subject.serve.id), eq(infraConfigs.environmentId, subject.environment.id)))
    .limit(1)
  if (!row) {
    throw new AppError(
      409,
      'INFRA_CONFIG_MISSING',
      `Serve ${subject.serve.name} has no infra config for environment ${subject.environment.name}: POST /api/v1/serve/${subject.serve.name}/infra-config/${subject.environment.name} first`,
    )
  }
  return row
}

/** A new revision's inputs: an artifact and a deployment config on the serve's current infra config. */
function revisionInputs(
  serve: ServeRow,
  infra: InfraConfigRow,
  artifact: { version: string; image: string },
  deploymentConfig: DeploymentConfig,
): RevisionInputs {
  return { artifactVersion: artifact.version, image: artifact.image, deploymentConfig, infraSnapshot: infraSnapshotOf(serve, infra) }
}

function infraSnapshotOf(serve: ServeRow, row: InfraConfigRow): Record<string, unknown> {
  if (serve.type === 'workflow') return { ...(row.workflowConfig ?? {}) }
  return {
    backend_type: row.backendType,
    cores: row.cores,
    memory: row.memory,
    min_replicas: row.minReplicas,
    max_replicas: row.maxReplicas,
    node_capacity_type: row.nodeCapacityType,
    target_cpu_utilization: row.targetCpuUtilization,
    additional_hosts: row.additionalHosts ?? [],
  }
}

async function deployableArtifact(db: Executor, serve: ServeRow, version: string): Promise<ArtifactRow & { image: string }> {
  const [row] = await db
    .select()
    .from(artifacts)
    .where(and(eq(artifacts.serveId, serve.id), eq(artifacts.version, version)))
    .limit(1)
  if (!row) throw new AppError(404, 'NOT_FOUND', `Artifact ${version} of serve ${serve.name} not found`)
  if (row.status !== 'succeeded' || !row.image) {
    throw new AppError(409, 'ARTIFACT_NOT_READY', `Artifact ${version} of serve ${serve.name} is ${row.status}; only a succeeded artifact can be deployed`)
  }
  return { ...row, image: row.image }
}

// --- Rendering ---

async function renderRevision(deps: DeploymentDeps, subject: Subject, inputs: RevisionInputs, revision: number): Promise<RenderedServe> {
  const { serve, environment } = subject
  const snapshot = inputs.infraSnapshot
  const workflow = serve.type === 'workflow' ? (snapshot as unknown as WorkflowServeConfig) : undefined
  const base = workflow
    ? { min: 1, max: 1 }
    : { min: Number(snapshot.min_replicas), max: Number(snapshot.max_replicas) }
  // A redeploy or rollback renders the bounds in force now: a scaling window stays open across it.
  const bounds = workflow ? base : await effectiveReplicaBounds(deps.db, serve.id, environment.id, base)
  const mlflow = deps.config.mlflow
  const input: RenderInput = {
    serve: { name: serve.name, type: serve.type, description: serve.description },
    environment: {
      name: environment.name,
      domain_suffix: environment.domainSuffix,
      namespace: environment.namespace,
      cluster_name: environment.clusterName,
      security_group: environment.securityGroup,
      subnets: environment.subnets,
      workflow_url: environment.workflowUrl,
    },
    infra: workflow
      ? {
          backend_type: 'ray',
          cores: workflow.head_node_config.cores,
          memory: workflow.head_node_config.memory,
          min_replicas: 1,
          max_replicas: 1,
          node_capacity_type: workflow.head_node_config.node_capacity_type,
        }
      : {
          backend_type: snapshot.backend_type as 'fastapi' | 'ray',
          cores: Number(snapshot.cores),
          memory: Number(snapshot.memory),
          min_replicas: bounds.min,
          max_replicas: bounds.max,
          node_capacity_type: snapshot.node_capacity_type as 'spot' | 'ondemand',
          target_cpu_utilization: Number(snapshot.target_cpu_utilization ?? 70),
          additional_hosts: (snapshot.additional_hosts as string[] | undefined) ?? [],
        },
    artifact: { version: inputs.artifactVersion, image: inputs.image },
    deployment: {
      strategy: inputs.deploymentConfig.deployment_strategy,
      max_surge: inputs.deploymentConfig.max_surge,
      max_unavailable: inputs.deploymentConfig.max_unavailable,
      environment_variables: inputs.deploymentConfig.environment_variables,
      revision,
    },
    ...(mlflow.trackingUri ? { mlflow: { tracking_uri: mlflow.trackingUri, ...(mlflow.username ? { username: mlflow.username } : {}) } } : {}),
    ...(workflow ? { workflow: { schedule: workflow.schedule } } : {}),
  }
  return renderServe(input, deps.config)
}

/** The deployment config a request asks for; what it leaves out is taken from the active revision. */
function deploymentConfigFor(given: DeploymentModel.DeploymentConfigBody | undefined, previous: DeploymentConfig | undefined): DeploymentConfig {
  const variables = given?.environment_variables
  const maxSurge = given?.max_surge ?? previous?.max_surge
  const maxUnavailable = given?.max_unavailable ?? previous?.max_unavailable
  return {
    deployment_strategy: given?.deployment_strategy ?? previous?.deployment_strategy ?? 'rolling',
    ...(maxSurge !== undefined ? { max_surge: maxSurge } : {}),
    ...(maxUnavailable !== undefined ? { max_unavailable: maxUnavailable } : {}),
    // As in the original: no (or empty) variables means "keep the previous deployment's".
    environment_variables: variables && Object.keys(variables).length > 0 ? variables : (previous?.environment_variables ?? {}),
  }
}

// --- Rolling out a revision ---

/**
 * Refuses a change before anything about it is recorded when the environment's driver has no way to
 * reach a cluster (503 CLUSTER_NOT_CONFIGURED, the message says what to set).
 */
export function ensureClusterConfigured(drivers: ClusterDrivers, target: ClusterTarget): void {
  try {
    drivers.for(target).ensureConfigured(target)
  } catch (error) {
    throw error instanceof ClusterError && error.kind === 'not_configured' ? clusterNotConfigured(target, error) : error
  }
}

const clusterNotConfigured = (target: ClusterTarget, error: ClusterError) =>
  new AppError(503, 'CLUSTER_NOT_CONFIGURED', `No cluster can be reached for environment ${target.environment.name} (cluster_driver ${target.environment.cluster_driver}). ${error.message}`)

async function nextRevisionNumber(db: Executor, serveId: number): Promise<number> {
  const [row] = await db.select({ last: max(deployments.revision) }).from(deployments).where(eq(deployments.serveId, serveId))
  return (row?.last ?? 0) + 1
}

/**
 * Records the revision (status `deploying`) with the change lock and its audit entry, and applies it.
 * A cluster failure fails the revision, releases the lock and answers 502: retrying is safe.
 */
async function rollOut(
  deps: DeploymentDeps,
  audit: AuditContext,
  subject: Subject,
  change: { reason: DeploymentReason; inputs: RevisionInputs; rolledBackFrom?: number; secrets?: { mlflowPassword?: string } },
): Promise<DeploymentRow> {
  const { db, config } = deps
  const key = lockKey(subject)
  ensureClusterConfigured(deps.drivers, clusterTarget(subject))
  const { row, rendered } = await recordRevision(deps, audit, subject, change)
  try {
    await deps.drivers.for(clusterTarget(subject)).apply(clusterTarget(subject), rendered, {
      mlflowPassword: change.secrets?.mlflowPassword ?? config.mlflow.password,
    })
    if (subject.serve.type === 'api') await recordAppliedBounds(db, subject.serve.id, subject.environment.id, appliedBoundsOf(row))
  } catch (error) {
    const reason = error instanceof ClusterError ? `${error.kind}: ${error.message}` : 'the cluster call failed'
    await failRevision(db, row.id, `apply failed: ${reason}`)
    await releaseChangeLock(db, key, row.id)
    deps.log.warn('apply failed', { serve: subject.serve.name, env: subject.environment.name, revision: row.revision, reason })
    throw new AppError(
      502,
      'CLUSTER_FAILED',
      `Applying revision ${row.revision} to ${subject.environment.name} failed (${reason}); the revision is marked failed and the request can be retried`,
    )
  }
  return row
}

async function recordRevision(
  deps: DeploymentDeps,
  audit: AuditContext,
  subject: Subject,
  change: { reason: DeploymentReason; inputs: RevisionInputs; rolledBackFrom?: number },
): Promise<{ row: DeploymentRow; rendered: RenderedServe }> {
  const { db } = deps
  for (let attempt = 0; attempt < 10; attempt++) {
    // Spread the retries of requests that collided, so that the next round finds the winner's lock.
    if (attempt > 0) await Bun.sleep(5 + Math.random() * 20 * attempt)
    const revision = await nextRevisionNumber(db, subject.serve.id)
    // A rollback renders with the number of the revision it restores: its manifests come back exactly.
    const rendered = await renderRevision(deps, subject, change.inputs, change.rolledBackFrom ?? revision)
    try {
      const id = await db.transaction(async (tx) => {
        // The lock and the revision commit together: whoever is refused can always name the revision.
        await acquireChangeLock(tx, lockKey(subject), {
          operation: change.reason,
          requestId: audit.requestId,
          ttlMs: (deps.config.rollout.deadlineSeconds + 60) * 1000,
        })
        const [inserted] = await tx
          .insert(deployments)
          .values({
            serveId: subject.serve.id,
            environmentId: subject.environment.id,
            revision,
            reason: change.reason,
            rolledBackFrom: change.rolledBackFrom ?? null,
            artifactVersion: change.inputs.artifactVersion,
            image: change.inputs.image,
            deploymentConfig: change.inputs.deploymentConfig,
            infraSnapshot: change.inputs.infraSnapshot,
            rendered: rendered as unknown as Record<string, unknown>,
            manifestsYaml: toYaml(rendered.manifests),
            status: 'deploying',
            createdBy: audit.actor.name,
            requestId: audit.requestId,
          })
          .$returningId()
        const deploymentId = Number(inserted?.id)
        await attachDeployment(tx, lockKey(subject), deploymentId)
        await recordAudit(tx, audit, {
          resourceType: 'serve',
          resourceName: subject.serve.name,
          statusCode: 202,
          summary: { env: subject.environment.name, revision, reason: change.reason, artifact_version: change.inputs.artifactVersion, rolled_back_from: change.rolledBackFrom ?? null },
        })
        return deploymentId
      })
      return { row: await deploymentById(db, id), rendered }
    } catch (error) {
      // Another environment of the same serve took this revision number a moment ago, or concurrent
      // requests deadlocked on the lock row: either way, run again (the loser then sees the lock).
      if (!isDuplicateKey(error) && !isDeadlock(error)) throw error
    }
  }
  throw new AppError(409, 'CHANGE_IN_PROGRESS', 'Too many concurrent deployments of this serve; retry')
}

/** The bounds a revision rendered (what the cluster now has), from its stored manifests. */
function appliedBoundsOf(row: DeploymentRow): { min: number; max: number } {
  return renderedReplicaBounds(row.rendered as unknown as RenderedServe) ?? { min: Number(row.infraSnapshot.min_replicas), max: Number(row.infraSnapshot.max_replicas) }
}

async function deploymentById(db: Executor, id: number): Promise<DeploymentRow> {
  const [row] = await db.select().from(deployments).where(eq(deployments.id, id)).limit(1)
  if (!row) throw new Error(`deployment ${id} vanished`)
  return row
}

export async function failRevision(db: Executor, id: number, reason: string) {
  await db
    .update(deployments)
    .set({ status: 'failed', failureReason: reason.slice(0, 2048), endedAt: new Date() })
    .where(and(eq(deployments.id, id), inArray(deployments.status, [...IN_FLIGHT_STATUSES])))
}

// --- The routes' operations ---

export type DeployOutcome =
  | { kind: 'dry-run'; manifests: string; diff: string; activeRevision: number | null }
  | { kind: 'started'; row: DeploymentRow; subject: Subject }

export async function deploy(deps: DeploymentDeps, audit: AuditContext, serveName: string, body: DeploymentModel.DeployBody): Promise<DeployOutcome> {
  const subject = await loadSubject(deps.db, serveName, body.env)
  const infra = await infraConfigRow(deps.db, subject)
  const artifact = await deployableArtifact(deps.db, subject.serve, body.artifact_version)
  const active = await activeRevision(deps.db, subject)
  const inputs = revisionInputs(subject.serve, infra, artifact, deploymentConfigFor(body.api_serve_deployment_config, active?.deploymentConfig))
  if (body.dry_run) {
    const next = await nextRevisionNumber(deps.db, subject.serve.id)
    const manifests = toYaml((await renderRevision(deps, subject, inputs, next)).manifests)
    const diff = createTwoFilesPatch(
      active ? `revision ${active.revision}` : 'nothing deployed',
      `revision ${next} (proposed)`,
      active?.manifestsYaml ?? '',
      manifests,
    )
    return { kind: 'dry-run', manifests, diff, activeRevision: active?.revision ?? null }
  }
  return { kind: 'started', row: await rollOut(deps, audit, subject, { reason: 'deploy', inputs }), subject }
}

/** Used by one-click deploys: the same roll-out with a reason of its own and the MLflow password. */
export async function deployPrepared(
  deps: DeploymentDeps,
  audit: AuditContext,
  subject: Subject,
  change: { reason: DeploymentReason; artifact: { version: string; image: string }; deploymentConfig: DeploymentConfig },
) {
  const infra = await infraConfigRow(deps.db, subject)
  return rollOut(deps, audit, subject, {
    reason: change.reason,
    inputs: revisionInputs(subject.serve, infra, change.artifact, change.deploymentConfig),
  })
}

export async function rollback(deps: DeploymentDeps, audit: AuditContext, serveName: string, body: DeploymentModel.RollbackBody) {
  const subject = await loadSubject(deps.db, serveName, body.env)
  const current = await activeRevision(deps.db, subject)
  let target: DeploymentRow | undefined
  if (body.revision !== undefined) {
    ;[target] = await deps.db
      .select()
      .from(deployments)
      .where(and(eq(deployments.serveId, subject.serve.id), eq(deployments.revision, body.revision)))
      .limit(1)
    if (!target || target.environmentId !== subject.environment.id) {
      throw new AppError(404, 'NOT_FOUND', `Revision ${body.revision} of serve ${serveName} was never deployed to ${body.env}`)
    }
  } else {
    // The last revision that was active before the current one.
    target = await latestWithStatus(deps.db, subject, ['superseded'], current?.revision)
    if (!target) throw new AppError(409, 'NOTHING_TO_ROLL_BACK_TO', `Serve ${serveName} has no earlier active revision in ${body.env}`)
  }
  const row = await rollOut(deps, audit, subject, {
    reason: 'rollback',
    rolledBackFrom: target.revision,
    inputs: {
      artifactVersion: target.artifactVersion,
      image: target.image,
      deploymentConfig: target.deploymentConfig,
      infraSnapshot: target.infraSnapshot,
    },
  })
  return { row, subject }
}

/** The infra config hook: a serve active in that environment is redeployed with the new settings. */
export async function redeployOnInfraChange(deps: DeploymentDeps, audit: AuditContext, change: InfraConfigChange) {
  const subject = { serve: change.serve, environment: change.environment }
  const active = await activeRevision(deps.db, subject)
  if (!active) return undefined
  const infra = await infraConfigRow(deps.db, subject)
  return rollOut(deps, audit, subject, {
    reason: 'infra-update',
    inputs: revisionInputs(subject.serve, infra, { version: active.artifactVersion, image: active.image }, active.deploymentConfig),
  })
}

/**
 * Removes the serve's objects from the cluster and marks its active revision `undeployed`; config
 * and history stay. Idempotent: with nothing live there, it succeeds without a cluster call.
 */
export async function undeploy(deps: DeploymentDeps, audit: AuditContext, serveName: string, envName: string) {
  const { db } = deps
  const subject = await loadSubject(db, serveName, envName)
  const newest = await latestWithStatus(db, subject, ['active', 'failed', 'superseded', 'undeployed', ...IN_FLIGHT_STATUSES])
  // A failed rollout may have left objects behind: it is live enough to remove. One in flight holds
  // the change lock, so the undeploy is refused (409) until it ends.
  if (!newest || newest.status === 'undeployed') return { subject, undeployedRevision: null }
  ensureClusterConfigured(deps.drivers, clusterTarget(subject))
  const key = lockKey(subject)
  await acquireChangeLock(db, key, { operation: 'undeploy', requestId: audit.requestId, ttlMs: 5 * 60_000 })
  try {
    try {
      await deps.drivers.for(clusterTarget(subject)).remove(clusterTarget(subject))
    } catch (error) {
      const reason = error instanceof ClusterError ? `${error.kind}: ${error.message}` : 'the cluster call failed'
      throw new AppError(502, 'CLUSTER_FAILED', `Removing ${serveName} from ${envName} failed (${reason}); nothing was changed and the request can be retried`)
    }
    const active = await activeRevision(db, subject)
    await db.transaction(async (tx) => {
      if (active) await tx.update(deployments).set({ status: 'undeployed', endedAt: new Date() }).where(eq(deployments.id, active.id))
      await recordAudit(tx, audit, { resourceType: 'serve', resourceName: serveName, statusCode: 200, summary: { env: envName, undeployed_revision: active?.revision ?? null } })
    })
    return { subject, undeployedRevision: active?.revision ?? null }
  } finally {
    await releaseChangeLock(db, key)
  }
}

export async function currentDeployment(deps: DeploymentDeps, serveName: string, envName: string) {
  const subject = await loadSubject(deps.db, serveName, envName)
  const [active, inFlight] = await Promise.all([activeRevision(deps.db, subject), inFlightRevision(deps.db, subject)])
  let rollout: DeploymentModel.Rollout | null = null
  let rolloutError: string | undefined
  if (active || inFlight) {
    try {
      const status = await deps.drivers.for(clusterTarget(subject)).status(clusterTarget(subject))
      rollout = {
        phase: status.phase,
        desired_replicas: status.desiredReplicas,
        updated_replicas: status.updatedReplicas,
        ready_replicas: status.readyReplicas,
        available_replicas: status.availableReplicas,
        ...(status.failureReason ? { failure_reason: status.failureReason } : {}),
      }
    } catch (error) {
      rolloutError = error instanceof ClusterError ? `${error.kind}: ${error.message}` : 'the cluster could not be read'
    }
  }
  return {
    serve_name: subject.serve.name,
    env: subject.environment.name,
    active: active ? toRevision(active, deps.config, subject) : null,
    in_flight: inFlight ? toRevision(inFlight, deps.config, subject) : null,
    rollout,
    ...(rolloutError ? { rollout_error: rolloutError } : {}),
  }
}

/** The original's `GET …/status/{env}`: READY only when a revision is active and fully rolled out. */
export async function readiness(deps: DeploymentDeps, serveName: string, envName: string): Promise<'READY' | 'NOT_READY'> {
  const current = await currentDeployment(deps, serveName, envName)
  const rollout = current.rollout
  return current.active && !current.in_flight && rollout?.phase === 'complete' && rollout.ready_replicas >= Math.max(1, rollout.desired_replicas)
    ? 'READY'
    : 'NOT_READY'
}

export async function history(deps: DeploymentDeps, serveName: string, query: DeploymentModel.HistoryQuery): Promise<Page<DeploymentModel.Revision>> {
  const serve = await findServe(deps.db, serveName)
  const { page, limit, offset } = pageWindow(query)
  const conditions: SQL[] = [eq(deployments.serveId, serve.id)]
  if (query.env) conditions.push(eq(environments.name, query.env))
  if (query.status) conditions.push(eq(deployments.status, query.status))
  const where = and(...conditions)
  const [rows, [totals]] = await Promise.all([
    deps.db
      .select({ deployment: deployments, environment: environments })
      .from(deployments)
      .innerJoin(environments, eq(environments.id, deployments.environmentId))
      .where(where)
      .orderBy(desc(deployments.revision))
      .limit(limit)
      .offset(offset),
    deps.db.select({ total: count() }).from(deployments).innerJoin(environments, eq(environments.id, deployments.environmentId)).where(where),
  ])
  return {
    items: rows.map(({ deployment, environment }) => toRevision(deployment, deps.config, { serve, environment })),
    total: totals?.total ?? 0,
    page,
    limit,
  }
}

export async function revisionDetail(deps: DeploymentDeps, serveName: string, revision: number) {
  const serve = await findServe(deps.db, serveName)
  const [found] = await deps.db
    .select({ deployment: deployments, environment: environments })
    .from(deployments)
    .innerJoin(environments, eq(environments.id, deployments.environmentId))
    .where(and(eq(deployments.serveId, serve.id), eq(deployments.revision, revision)))
    .limit(1)
  if (!found) throw notFound(`Revision ${revision} of serve`, serveName)
  return { ...toRevision(found.deployment, deps.config, { serve, environment: found.environment }), manifests: found.deployment.manifestsYaml }
}

/** `GET …/manifests/{env}?artifact_version=`: what a deploy would apply, touching no cluster. */
export async function previewManifests(deps: DeploymentDeps, serveName: string, envName: string, artifactVersion: string) {
  const subject = await loadSubject(deps.db, serveName, envName)
  const infra = await infraConfigRow(deps.db, subject)
  const artifact = await deployableArtifact(deps.db, subject.serve, artifactVersion)
  const active = await activeRevision(deps.db, subject)
  const next = await nextRevisionNumber(deps.db, subject.serve.id)
  return renderRevision(
    deps,
    subject,
    revisionInputs(subject.serve, infra, artifact, deploymentConfigFor(undefined, active?.deploymentConfig)),
    next,
  )
}
