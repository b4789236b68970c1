/**
 * The deployment use cases: deploy, roll back, undeploy, an infra change's redeploy, and what is
 * deployed where. Each builds a revision's inputs and its render, and hands the change to the
 * placement module, which owns the state (revisions, lock, infra config) and the transitions.
 */
import { createTwoFilesPatch } from 'diff'
import { and, eq } from 'drizzle-orm'
import { ClusterError, type ClusterTarget } from '../../cluster/driver'
import type { ClusterDrivers } from '../../cluster'
import type { Config } from '../../config'
import type { Db, Executor } from '../../db/client'
import { type ArtifactRow, artifacts, type CanaryConfig, type CanaryRolloutRow, type DeploymentConfig, type DeploymentRow, type EnvironmentRow, type ServeRow } from '../../db/schema'
import type { AuditContext } from '../../lib/audit'
import { AppError, invalid, notFound } from '../../lib/errors'
import { allInOrder } from '../../lib/parallel'
import type { Logger } from '../../lib/logger'
import { type Page, pageWindow } from '../../lib/pagination'
import { baseName, canaryName, DCM_REFUSALS, primaryHost, type RenderedServe, type RenderInput, renderServe, routedByPath, toYaml } from '../../render'
import { findEnvironment } from '../environment/service'
import type { InfraColumns } from '../placement/revision-inputs'
import { DEFAULT_TARGET_CPU_UTILIZATION, infraSnapshotOf, isApiSnapshot, type RevisionInputs } from '../placement/revision-inputs'
import { abortCanary, judgeStep, promoteCanary, secondsToNextStep, startAsCanary } from '../placement/canary'
import * as placement from '../placement/service'
import { effectiveReplicaBounds } from '../scaling/service'
import { findServe } from '../serve/service'
import { CANARY_DEFAULTS, type DeploymentModel } from './model'

export interface DeploymentDeps {
  db: Db
  config: Config
  drivers: ClusterDrivers
  log: Logger
}

type Subject = placement.Subject

export function serviceUrl(config: Config, serve: string, environment: Pick<EnvironmentRow, 'domainSuffix'>) {
  return routedByPath(config, environment.domainSuffix) ? `${config.ingressBaseUrl}/${serve}/` : `https://${primaryHost(serve, environment.domainSuffix)}`
}

export function toRevision(row: DeploymentRow, config: Config, subject: Subject): DeploymentModel.Revision {
  return {
    revision: row.revision,
    serve_name: subject.serve.name,
    env: subject.environment.name,
    status: row.status,
    reason: row.reason,
    rolled_back_from: row.rolledBackFrom,
    rolled_back_to: row.rolledBackTo,
    artifact_version: row.artifactVersion,
    image: row.image,
    api_serve_deployment_config: row.deploymentConfig,
    // Revisions recorded before these fields existed froze none: answered with their defaults (what render applies).
    infra_snapshot: isApiSnapshot(row.infraSnapshot)
      ? { ...row.infraSnapshot, target_cpu_utilization: row.infraSnapshot.target_cpu_utilization ?? DEFAULT_TARGET_CPU_UTILIZATION, additional_hosts: row.infraSnapshot.additional_hosts ?? [] }
      : row.infraSnapshot,
    service_url: serviceUrl(config, subject.serve.name, subject.environment),
    failure_reason: row.failureReason,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    activated_at: row.activatedAt?.toISOString() ?? null,
    ended_at: row.endedAt?.toISOString() ?? null,
  }
}

async function loadSubject(db: Db, serveName: string, envName: string): Promise<Subject> {
  const [serve, environment] = await allInOrder([findServe(db, serveName), findEnvironment(db, envName)])
  return { serve, environment }
}

async function currentInfra(db: Executor, subject: Subject) {
  const row = await placement.infraConfigRow(db, placement.lockKey(subject))
  if (!row) {
    throw new AppError(
      409,
      'INFRA_CONFIG_MISSING',
      `Serve ${subject.serve.name} has no infra config for environment ${subject.environment.name}: POST /api/v1/serve/${subject.serve.name}/infra-config/${subject.environment.name} first`,
    )
  }
  return infraSnapshotOf(subject.serve, row)
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

/** The render of a revision's inputs, with the replica bounds in force now (a scaling window stays open across a redeploy). */
async function renderRevision(deps: DeploymentDeps, subject: Subject, inputs: RevisionInputs, revision: number): Promise<RenderedServe> {
  const { serve, environment } = subject
  const snapshot = inputs.infraSnapshot
  const mlflow = deps.config.mlflow
  let infra: RenderInput['infra']
  let workflow: RenderInput['workflow']
  if (isApiSnapshot(snapshot)) {
    const bounds = await effectiveReplicaBounds(deps.db, serve.id, environment.id, { min: snapshot.min_replicas, max: snapshot.max_replicas })
    infra = { ...snapshot, min_replicas: bounds.min, max_replicas: bounds.max }
  } else {
    const head = snapshot.head_node_config
    infra = { backend_type: 'ray', cores: head.cores, memory: head.memory, min_replicas: 1, max_replicas: 1, node_capacity_type: head.node_capacity_type }
    workflow = { schedule: snapshot.schedule, worker_groups: snapshot.worker_node_config }
  }
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
      cluster_driver: environment.clusterDriver,
    },
    infra,
    artifact: { version: inputs.artifactVersion, image: inputs.image },
    deployment: {
      // A canary's own Deployment is made by the driver; promoted, it replaces the active one as a rolling update.
      strategy: inputs.deploymentConfig.deployment_strategy === 'canary' ? 'rolling' : inputs.deploymentConfig.deployment_strategy,
      max_surge: inputs.deploymentConfig.max_surge,
      max_unavailable: inputs.deploymentConfig.max_unavailable,
      environment_variables: inputs.deploymentConfig.environment_variables,
      revision,
    },
    ...(mlflow.trackingUri ? { mlflow: { tracking_uri: mlflow.trackingUri, ...(mlflow.username ? { username: mlflow.username } : {}) } } : {}),
    ...(workflow ? { workflow } : {}),
  }
  return renderServe(input, deps.config)
}

export const renderFor = (deps: DeploymentDeps, subject: Subject) => (inputs: RevisionInputs, revision: number) => renderRevision(deps, subject, inputs, revision)

/** The deployment config a request asks for; what it leaves out is taken from the active revision. */
function deploymentConfigFor(given: DeploymentModel.DeploymentConfigBody | undefined, previous: DeploymentConfig | undefined): DeploymentConfig {
  const variables = given?.environment_variables
  const maxSurge = given?.max_surge ?? previous?.max_surge
  const maxUnavailable = given?.max_unavailable ?? previous?.max_unavailable
  const strategy = given?.deployment_strategy ?? previous?.deployment_strategy ?? 'rolling'
  const autoRollback = given?.auto_rollback ?? previous?.auto_rollback
  if (given?.canary && strategy !== 'canary') {
    throw invalid([{ path: '/api_serve_deployment_config/canary', message: `only with deployment_strategy canary (this deploy's is ${strategy})` }], 'The deployment config is invalid')
  }
  const canary = strategy === 'canary' ? { ...CANARY_DEFAULTS, ...previous?.canary, ...given?.canary } : undefined
  if (canary) {
    const ascending = canary.steps.every((step, i) => i === 0 || step > (canary.steps[i - 1] as number))
    if (!ascending || canary.steps.at(-1) !== 100) {
      throw invalid([{ path: '/api_serve_deployment_config/canary/steps', message: `must rise strictly and end at 100, the full promotion (given ${JSON.stringify(canary.steps)})` }], 'The deployment config is invalid')
    }
  }
  return {
    deployment_strategy: strategy,
    ...(maxSurge !== undefined ? { max_surge: maxSurge } : {}),
    ...(maxUnavailable !== undefined ? { max_unavailable: maxUnavailable } : {}),
    // As in the original: no (or empty) variables means "keep the previous deployment's".
    environment_variables: variables && Object.keys(variables).length > 0 ? variables : (previous?.environment_variables ?? {}),
    ...(autoRollback !== undefined ? { auto_rollback: autoRollback } : {}),
    ...(canary ? { canary: { ...canary, steps: [...canary.steps] } } : {}),
  }
}

/** A canary needs the Kubernetes driver and a FastAPI serve: refused up front (422) anywhere else. */
function ensureCanaryFits(subject: Subject, config: DeploymentConfig, infra: RevisionInputs['infraSnapshot'], istio: boolean): void {
  if (config.deployment_strategy !== 'canary') return
  const path = '/api_serve_deployment_config/deployment_strategy'
  let why: string | undefined
  const canaryLabel = canaryName(baseName(subject.serve.name, subject.environment.name))
  if (subject.environment.clusterDriver === 'dcm') why = DCM_REFUSALS.canary
  else if (!isApiSnapshot(infra) || infra.backend_type !== 'fastapi') why = 'a canary runs a FastAPI serve\'s Deployment beside the active one; a workflow or Ray serve rolls out as a whole (use rolling or recreate)'
  else if (istio && canaryLabel.length > 63) why = `under Istio the canary's pods are labelled ${canaryLabel}, longer than a label value's 63 characters: shorten the serve's name`
  if (why) throw invalid([{ path, message: why }], `Serve ${subject.serve.name} cannot be deployed as a canary in ${subject.environment.name}`)
}

// --- The cluster ---

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

function start(deps: DeploymentDeps, audit: AuditContext, subject: Subject, change: Omit<placement.RevisionChange, 'render'>) {
  ensureClusterConfigured(deps.drivers, placement.clusterTarget(subject))
  return placement.startRevision(deps, audit, subject, { ...change, render: renderFor(deps, subject), startAs: startAsCanary(deps, subject) })
}

// --- The routes' operations ---

export type DeployOutcome =
  | { kind: 'dry-run'; manifests: string; diff: string; activeRevision: number | null }
  | { kind: 'started'; row: DeploymentRow; subject: Subject }

export async function deploy(deps: DeploymentDeps, audit: AuditContext, serveName: string, body: DeploymentModel.DeployBody): Promise<DeployOutcome> {
  const subject = await loadSubject(deps.db, serveName, body.env)
  const [infraSnapshot, artifact, active] = await allInOrder([
    currentInfra(deps.db, subject),
    deployableArtifact(deps.db, subject.serve, body.artifact_version),
    placement.activeRevision(deps.db, placement.lockKey(subject)),
  ])
  const inputs: RevisionInputs = {
    artifactVersion: artifact.version,
    image: artifact.image,
    deploymentConfig: deploymentConfigFor(body.api_serve_deployment_config, active?.deploymentConfig),
    infraSnapshot,
  }
  ensureCanaryFits(subject, inputs.deploymentConfig, infraSnapshot, deps.config.istio.enabled)
  if (body.dry_run) {
    const next = await placement.nextRevisionNumber(deps.db, subject.serve.id)
    const manifests = toYaml((await renderRevision(deps, subject, inputs, next)).manifests)
    const diff = createTwoFilesPatch(active ? `revision ${active.revision}` : 'nothing deployed', `revision ${next} (proposed)`, active?.manifestsYaml ?? '', manifests)
    return { kind: 'dry-run', manifests, diff, activeRevision: active?.revision ?? null }
  }
  return { kind: 'started', row: await start(deps, audit, subject, { reason: 'deploy', inputs }), subject }
}

/** One-click: the same roll-out with a reason of its own; its infra config is stored with the revision. */
export function deployPrepared(
  deps: DeploymentDeps,
  audit: AuditContext,
  subject: Subject,
  change: { artifact: { version: string; image: string }; deploymentConfig: DeploymentConfig; infraSnapshot: RevisionInputs['infraSnapshot'] },
) {
  return start(deps, audit, subject, {
    reason: 'one-click',
    inputs: { artifactVersion: change.artifact.version, image: change.artifact.image, deploymentConfig: change.deploymentConfig, infraSnapshot: change.infraSnapshot },
    storeInfra: true,
  })
}

export const activeRevision = (db: Executor, subject: Subject) => placement.activeRevision(db, placement.lockKey(subject))

/**
 * Rolls back to a revision (default: the one active before the current one), interrupting a rollout
 * in flight. A revision that failed or was cancelled is refused unless `force`. The stored infra
 * config becomes the restored revision's, so GET shows what runs.
 */
export async function rollback(deps: DeploymentDeps, audit: AuditContext, serveName: string, body: DeploymentModel.RollbackBody) {
  const subject = await loadSubject(deps.db, serveName, body.env)
  const key = placement.lockKey(subject)
  let target: DeploymentRow | undefined
  if (body.revision !== undefined) {
    const found = await placement.revisionOf(deps.db, subject.serve.id, body.revision)
    if (!found || found.environment.id !== subject.environment.id) {
      throw new AppError(404, 'NOT_FOUND', `Revision ${body.revision} of serve ${serveName} was never deployed to ${body.env}`)
    }
    target = found.deployment
    if ((target.status === 'failed' || target.status === 'cancelled') && !body.force) {
      throw new AppError(409, 'REVISION_FAILED', `Revision ${target.revision} ${target.status === 'failed' ? `failed (${target.failureReason ?? 'unknown reason'})` : 'was cancelled before it became active'}; roll back to it anyway with "force": true`)
    }
  } else {
    const current = await placement.activeRevision(deps.db, key)
    target = await placement.previousActive(deps.db, key, current?.revision)
    if (!target) throw new AppError(409, 'NOTHING_TO_ROLL_BACK_TO', `Serve ${serveName} has no earlier active revision in ${body.env}`)
  }
  await currentInfra(deps.db, subject) // 409 INFRA_CONFIG_MISSING: a rollback stores its config into the existing row
  const row = await start(deps, audit, subject, {
    reason: 'rollback',
    rolledBackFrom: target.revision,
    // A rollback's manifests carry the number of the revision it restored: restoring it must give them back byte for byte.
    renderAs: await placement.renderedNumber(deps.db, subject.serve.id, target),
    inputs: { artifactVersion: target.artifactVersion, image: target.image, deploymentConfig: target.deploymentConfig, infraSnapshot: target.infraSnapshot },
    storeInfra: true,
  })
  return { row, subject }
}

/**
 * The infra config hook of a PATCH: stores the new config and, where the serve is deployed, starts a
 * revision carrying it, atomically (placement.changeInfraConfig). Answers the revision started, if any.
 */
export async function commitInfraChange(deps: DeploymentDeps, audit: AuditContext, subject: Subject, next: InfraColumns, summary: Record<string, unknown>) {
  return placement.changeInfraConfig(deps, audit, subject, { next, summary, render: renderFor(deps, subject), startAs: startAsCanary(deps, subject) }, () =>
    ensureClusterConfigured(deps.drivers, placement.clusterTarget(subject)),
  )
}

/**
 * Removes the serve's objects from the cluster and marks what was live; config and history stay.
 * Idempotent: with nothing ever applied there, it succeeds without a cluster call.
 */
export async function undeploy(deps: DeploymentDeps, audit: AuditContext, serveName: string, envName: string) {
  const subject = await loadSubject(deps.db, serveName, envName)
  const { undeployedRevision } = await placement.undeployPlacement(deps, audit, subject, () => ensureClusterConfigured(deps.drivers, placement.clusterTarget(subject)))
  return { subject, undeployedRevision }
}

/** A canary's progress as GET …/deployment/{env} shows it, with its health read live from the cluster (null when it cannot be). */
async function canaryProgress(deps: DeploymentDeps, subject: Subject, row: DeploymentRow, canary: CanaryRolloutRow): Promise<DeploymentModel.CanaryProgress> {
  const config: CanaryConfig = row.deploymentConfig.canary ?? { ...CANARY_DEFAULTS, steps: [...CANARY_DEFAULTS.steps] }
  const now = new Date()
  let health: DeploymentModel.CanaryProgress['health'] = null
  if (canary.phase === 'stepping') {
    const target = placement.clusterTarget(subject)
    try {
      const workload = await deps.drivers.for(target).workload(target, canaryName(baseName(subject.serve.name, subject.environment.name)))
      const judged = judgeStep(canary, config, workload, now)
      health = {
        ready_replicas: judged.readyReplicas,
        desired_replicas: judged.desiredReplicas,
        restarts: judged.restarts,
        healthy: judged.ready && !judged.problem,
        ...(judged.problem ? { problem: judged.problem } : {}),
      }
    } catch {
      health = null // the rollout view says why the cluster could not be read
    }
  }
  const stable = await placement.deploymentRevisionNumber(deps.db, canary.stableDeploymentId)
  return {
    phase: canary.phase,
    step: canary.stepIndex + 1,
    steps: [...config.steps],
    weight: canary.weight,
    canary_replicas: canary.canaryReplicas,
    stable_revision: stable,
    step_started_at: canary.stepStartedAt.toISOString(),
    healthy_since: canary.healthySince?.toISOString() ?? null,
    next_step_in_seconds: secondsToNextStep(canary, config, now),
    step_seconds: config.step_seconds,
    health,
  }
}

export async function currentDeployment(deps: DeploymentDeps, serveName: string, envName: string) {
  const subject = await loadSubject(deps.db, serveName, envName)
  const { active, inFlight, canary } = await placement.readPlacement(deps.db, placement.lockKey(subject))
  let rollout: DeploymentModel.Rollout | null = null
  let rolloutError: string | undefined
  if (active || inFlight) {
    const target = placement.clusterTarget(subject)
    try {
      const status = await deps.drivers.for(target).status(target)
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
    canary: inFlight && canary ? await canaryProgress(deps, subject, inFlight, canary) : null,
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
  const { rows, total } = await placement.revisionHistory(deps.db, serve.id, { env: query.env, status: query.status }, { limit, offset })
  return { items: rows.map(({ deployment, environment }) => toRevision(deployment, deps.config, { serve, environment })), total, page, limit }
}

export async function revisionDetail(deps: DeploymentDeps, serveName: string, revision: number) {
  const serve = await findServe(deps.db, serveName)
  const found = await placement.revisionOf(deps.db, serve.id, revision)
  if (!found) throw notFound(`Revision ${revision} of serve`, serveName)
  const events = await placement.eventsOf(deps.db, found.deployment.id)
  return {
    ...toRevision(found.deployment, deps.config, { serve, environment: found.environment }),
    manifests: found.deployment.manifestsYaml,
    events: events.map((event) => ({ at: event.at.toISOString(), kind: event.kind, weight: event.weight, actor: event.actor, detail: event.detail })),
  }
}

/** POST …/deployment/{env}/promote and …/abort: the canary's next step (or all the way), or back to the stable revision; answers the placement as it now is. */
export async function changeCanary(deps: DeploymentDeps, audit: AuditContext, serveName: string, envName: string, command: { promote: { full: boolean } } | { abort: true }) {
  const subject = await loadSubject(deps.db, serveName, envName)
  ensureClusterConfigured(deps.drivers, placement.clusterTarget(subject))
  if ('promote' in command) await promoteCanary(deps, audit, subject, command.promote.full)
  else await abortCanary(deps, audit, subject)
  return currentDeployment(deps, serveName, envName)
}

/** `GET …/manifests/{env}?artifact_version=`: what a deploy would apply, touching no cluster. */
export async function previewManifests(deps: DeploymentDeps, serveName: string, envName: string, artifactVersion: string) {
  const subject = await loadSubject(deps.db, serveName, envName)
  const infraSnapshot = await currentInfra(deps.db, subject)
  const artifact = await deployableArtifact(deps.db, subject.serve, artifactVersion)
  const active = await placement.activeRevision(deps.db, placement.lockKey(subject))
  const next = await placement.nextRevisionNumber(deps.db, subject.serve.id)
  return renderRevision(deps, subject, { artifactVersion: artifact.version, image: artifact.image, deploymentConfig: deploymentConfigFor(undefined, active?.deploymentConfig), infraSnapshot }, next)
}
