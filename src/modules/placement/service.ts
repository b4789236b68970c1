/**
 * The one owner of a serve's placement in an environment: its revisions (active, in flight), its
 * change lock, its infra config row and what the cluster may hold. No other module reads or writes
 * `deployments`, `change_locks` or `infra_configs`; they call this. The commands follow the table in
 * transitions.ts:
 * - a command's effect, its lock and its audit entry commit in one transaction, or nothing does;
 * - a revision is applied after that commit; a failed apply marks it `failed` and releases the lock in
 *   one transaction (deadlocks are retried), answers 502, and leaves the rest as it was;
 * - rollback, undeploy and an infra change preempt a rollout in flight; the interrupted revision is
 *   `cancelled` once the new one is applied (or the objects removed), so a failure leaves it running.
 */
import { and, count, desc, eq, inArray, isNotNull, isNull, lt, max, ne, type SQL, sql } from 'drizzle-orm'
import type { AnyMySqlColumn } from 'drizzle-orm/mysql-core'
import { ClusterError, type ClusterTarget, clusterTargetOf } from '../../cluster/driver'
import type { ClusterDrivers } from '../../cluster'
import type { Config } from '../../config'
import { affectedRows, type Db, type Executor, type Tx } from '../../db/client'
import { preparedPerHandle } from '../../db/prepared'
import {
  type CanaryRolloutRow,
  canaryRollouts,
  type DeploymentEventKind,
  deploymentEvents,
  type DeploymentReason,
  type DeploymentRow,
  deployments,
  type EnvironmentRow,
  environments,
  IN_FLIGHT_STATUSES,
  type InfraConfigRow,
  infraConfigs,
  type InfraSnapshot,
  scalingSchedules,
  type ServeRow,
} from '../../db/schema'
import type { Actor, AuditContext } from '../../lib/audit'
import { recordAudit } from '../../lib/audit-log'
import { AppError, isDeadlock, isDuplicateKey } from '../../lib/errors'
import type { Logger } from '../../lib/logger'
import { type RenderedServe, renderedReplicaBounds, toYaml } from '../../render'
import { type Acquired, acquireChangeLock, attachDeployment, handBackChangeLock, type LockKey, releaseChangeLock, releaseRequestLock, underCanaryLease } from './locks'
import { type InfraColumns, infraColumnsOf, infraSnapshotOf, type RevisionInputs, sameSnapshot } from './revision-inputs'
import { type Outcome, type PlacementCommand, type PlacementState, TRANSITIONS } from './transitions'

export interface PlacementDeps {
  db: Db
  config: Config
  drivers: ClusterDrivers
  log: Logger
}

/** A serve in an environment. */
export interface Subject {
  serve: ServeRow
  environment: EnvironmentRow
}

export const lockKey = ({ serve, environment }: Subject): LockKey => ({ serveId: serve.id, environmentId: environment.id })
export const clusterTarget = ({ serve, environment }: Subject): ClusterTarget => clusterTargetOf(serve.name, environment)
const ofPlacement = (key: LockKey) => and(eq(deployments.serveId, key.serveId), eq(deployments.environmentId, key.environmentId))

// --- Reading a placement ---

export interface PlacementView {
  active?: DeploymentRow
  inFlight?: DeploymentRow
  /** The progress of the revision in flight when it is a canary beside the active one. */
  canary?: CanaryRolloutRow
  /** Some revision's objects were applied and not removed since. */
  mayHoldObjects: boolean
  state: PlacementState
}

async function newestWithStatus(db: Executor, key: LockKey, statuses: readonly DeploymentRow['status'][], before?: number) {
  const conditions: SQL[] = [ofPlacement(key) as SQL, inArray(deployments.status, [...statuses])]
  if (before !== undefined) conditions.push(lt(deployments.revision, before))
  const [row] = await db.select().from(deployments).where(and(...conditions)).orderBy(desc(deployments.revision)).limit(1)
  return row
}

export async function readPlacement(db: Executor, key: LockKey): Promise<PlacementView> {
  const [active, inFlight, [leftover]] = await Promise.all([
    newestWithStatus(db, key, ['active']),
    newestWithStatus(db, key, IN_FLIGHT_STATUSES),
    db.select({ id: deployments.id }).from(deployments).where(and(ofPlacement(key), isNotNull(deployments.appliedAt), isNull(deployments.removedAt))).limit(1),
  ])
  const mayHoldObjects = leftover !== undefined
  const canary = active && inFlight?.deploymentConfig.deployment_strategy === 'canary' ? await canaryOf(db, inFlight.id) : undefined
  const stepping = canary?.phase === 'stepping'
  const state: PlacementState = active ? (inFlight ? (stepping ? 'active+canary' : 'active+rolling-out') : 'active') : inFlight ? 'rolling-out' : mayHoldObjects ? 'failed' : 'empty'
  return { active, inFlight, ...(canary ? { canary } : {}), mayHoldObjects, state }
}

export async function canaryOf(db: Executor, deploymentId: number): Promise<CanaryRolloutRow | undefined> {
  const [row] = await db.select().from(canaryRollouts).where(eq(canaryRollouts.deploymentId, deploymentId)).limit(1)
  return row
}

// --- Events: what happened to a revision after it was recorded ---

export async function recordEvent(db: Executor, deploymentId: number, event: { kind: DeploymentEventKind; actor: string; detail: string; weight?: number | null }, at = new Date()) {
  await db.insert(deploymentEvents).values({ deploymentId, at, kind: event.kind, actor: event.actor, detail: event.detail.slice(0, 2048), weight: event.weight ?? null })
}

/** A revision's events, oldest first. */
export function eventsOf(db: Executor, deploymentId: number) {
  return db.select().from(deploymentEvents).where(eq(deploymentEvents.deploymentId, deploymentId)).orderBy(deploymentEvents.id)
}

/** Who acts when the control plane decides by itself (the rollout tracker): in the audit log and the events. */
export const TRACKER_ACTOR: Actor = { tokenId: null, name: 'rollout-tracker', scopes: [] }

/** The audit context of a decision of the tracker's about a revision. */
export const trackerAudit = (action: string, deploymentId: number): AuditContext => ({ actor: TRACKER_ACTOR, requestId: `tracker-${action.toLowerCase()}-${deploymentId}-${Date.now()}`, action })

export const activeRevision = (db: Executor, key: LockKey) => newestWithStatus(db, key, ['active'])

/** The one meaning of "deployed": a revision is active or rolling out. */
const DEPLOYED_STATUSES = ['active', ...IN_FLIGHT_STATUSES] as const

/** Environments where the serve is deployed: the overview shows them, DELETE of the serve refuses. */
export async function deployedEnvironments(db: Executor, serveId: number): Promise<string[]> {
  const rows = await deployedEnvironmentsQuery(db).execute({ serveId })
  return rows.map((row) => row.name)
}

const deployedEnvironmentsQuery = preparedPerHandle((db: Executor) =>
  db
    .selectDistinct({ name: environments.name })
    .from(deployments)
    .innerJoin(environments, eq(environments.id, deployments.environmentId))
    .where(and(eq(deployments.serveId, sql.placeholder('serveId')), inArray(deployments.status, [...DEPLOYED_STATUSES])))
    .orderBy(environments.name)
    .prepare(),
)

/** The replica bounds the active revision applied, if one is active. */
export async function activeRevisionBounds(db: Executor, key: LockKey): Promise<{ min: number; max: number } | undefined> {
  const active = await activeRevision(db, key)
  return active ? renderedReplicaBounds(active.rendered as unknown as RenderedServe) : undefined
}

/** The bounds a revision rendered (what the cluster has once it is applied). */
export function appliedBoundsOf(row: DeploymentRow): { min: number; max: number } {
  const rendered = renderedReplicaBounds(row.rendered as unknown as RenderedServe)
  if (rendered) return rendered
  const snapshot = row.infraSnapshot
  return 'min_replicas' in snapshot ? { min: snapshot.min_replicas, max: snapshot.max_replicas } : { min: 1, max: 1 }
}

export async function nextRevisionNumber(db: Executor, serveId: number): Promise<number> {
  const [row] = await db.select({ last: max(deployments.revision) }).from(deployments).where(eq(deployments.serveId, serveId))
  return (row?.last ?? 0) + 1
}

async function deploymentById(db: Executor, id: number): Promise<DeploymentRow> {
  const [row] = await db.select().from(deployments).where(eq(deployments.id, id)).limit(1)
  if (!row) throw new Error(`deployment ${id} vanished`)
  return row
}

export async function revisionOf(db: Executor, serveId: number, revision: number): Promise<{ deployment: DeploymentRow; environment: EnvironmentRow } | undefined> {
  const [found] = await db
    .select({ deployment: deployments, environment: environments })
    .from(deployments)
    .innerJoin(environments, eq(environments.id, deployments.environmentId))
    .where(and(eq(deployments.serveId, serveId), eq(deployments.revision, revision)))
    .limit(1)
  return found
}

/** The revision number of a revision row (a canary's stable side, named by id). */
export async function deploymentRevisionNumber(db: Executor, id: number): Promise<number> {
  return (await deploymentById(db, id)).revision
}

/** The revision that was active before `before` (the default target of a rollback). */
export const previousActive = (db: Executor, key: LockKey, before?: number) => newestWithStatus(db, key, ['superseded'], before)

/** The revision number a revision's manifests carry: its own, or for a rollback that of the revision it restored. */
export async function renderedNumber(db: Executor, serveId: number, row: DeploymentRow): Promise<number> {
  let current = row
  while ((current.reason === 'rollback' || current.reason === 'auto-rollback') && current.rolledBackFrom !== null) {
    const restored = await revisionOf(db, serveId, current.rolledBackFrom)
    if (!restored) break
    current = restored.deployment
  }
  return current.revision
}

export async function revisionHistory(
  db: Executor,
  serveId: number,
  filter: { env?: string; status?: DeploymentRow['status'] },
  window: { limit: number; offset: number },
): Promise<{ rows: { deployment: DeploymentRow; environment: EnvironmentRow }[]; total: number }> {
  const conditions: SQL[] = [eq(deployments.serveId, serveId)]
  if (filter.env) conditions.push(eq(environments.name, filter.env))
  if (filter.status) conditions.push(eq(deployments.status, filter.status))
  const where = and(...conditions)
  const [rows, [totals]] = await Promise.all([
    db
      .select({ deployment: deployments, environment: environments })
      .from(deployments)
      .innerJoin(environments, eq(environments.id, deployments.environmentId))
      .where(where)
      .orderBy(desc(deployments.revision))
      .limit(window.limit)
      .offset(window.offset),
    db.select({ total: count() }).from(deployments).innerJoin(environments, eq(environments.id, deployments.environmentId)).where(where),
  ])
  return { rows, total: totals?.total ?? 0 }
}


// --- What the scaling module needs of a placement ---

/** Whether a revision is active (the scaling tick acts on those; a rollout renders the bounds in force itself). */
export async function hasActiveRevision(db: Executor, key: LockKey): Promise<boolean> {
  const [row] = await db.select({ id: deployments.id }).from(deployments).where(and(ofPlacement(key), eq(deployments.status, 'active'))).limit(1)
  return row !== undefined
}

/** The infra config's replica bounds, when it is an api serve's. */
export async function baseReplicaBounds(db: Executor, key: LockKey): Promise<{ min: number; max: number } | undefined> {
  const row = await infraConfigRow(db, key)
  return row && row.minReplicas !== null && row.maxReplicas !== null ? { min: row.minReplicas, max: row.maxReplicas } : undefined
}

/**
 * SQL of one (serve, env) named by two columns of another table: whether a revision is active there,
 * and its infra config's replica bounds, for the scaling module's queries over its own schedules.
 */
export function placementSql(serveId: AnyMySqlColumn, environmentId: AnyMySqlColumn) {
  return {
    hasActiveRevision: sql`exists (select 1 from ${deployments} where ${deployments.serveId} = ${serveId} and ${deployments.environmentId} = ${environmentId} and ${deployments.status} = 'active')`,
    baseMin: sql<number | null>`(select ${infraConfigs.minReplicas} from ${infraConfigs} where ${infraConfigs.serveId} = ${serveId} and ${infraConfigs.environmentId} = ${environmentId})`,
    baseMax: sql<number | null>`(select ${infraConfigs.maxReplicas} from ${infraConfigs} where ${infraConfigs.serveId} = ${serveId} and ${infraConfigs.environmentId} = ${environmentId})`,
  }
}

/** Remembers the bounds now set on the cluster (by a deploy or a tick), on the schedule of (serve, env) if there is one. */
export async function recordAppliedBounds(db: Executor, key: LockKey, bounds: { min: number; max: number }): Promise<void> {
  await db
    .update(scalingSchedules)
    .set({ appliedMin: bounds.min, appliedMax: bounds.max })
    .where(and(eq(scalingSchedules.serveId, key.serveId), eq(scalingSchedules.environmentId, key.environmentId)))
}

// --- Infra config rows ---

export async function infraConfigRow(db: Executor, key: LockKey): Promise<InfraConfigRow | undefined> {
  const [row] = await db
    .select()
    .from(infraConfigs)
    .where(and(eq(infraConfigs.serveId, key.serveId), eq(infraConfigs.environmentId, key.environmentId)))
    .limit(1)
  return row
}

/** Every environment's infra config row of a serve, ordered by environment name. */
export async function infraConfigRowsOf(db: Executor, serveId: number): Promise<{ row: InfraConfigRow; envName: string }[]> {
  return infraConfigRowsQuery(db).execute({ serveId })
}

const infraConfigRowsQuery = preparedPerHandle((db: Executor) =>
  db
    .select({ row: infraConfigs, envName: environments.name })
    .from(infraConfigs)
    .innerJoin(environments, eq(environments.id, infraConfigs.environmentId))
    .where(eq(infraConfigs.serveId, sql.placeholder('serveId')))
    .orderBy(environments.name)
    .prepare(),
)

/** Creates the infra config (nothing runs yet that it would change): ALREADY_EXISTS is the caller's to report. */
export async function insertInfraConfig(tx: Tx, key: LockKey, columns: InfraColumns): Promise<void> {
  await tx.insert(infraConfigs).values({ ...key, ...columns })
}

// --- Commands ---

/** How long a rollout's lock lives without news of it: its deadline and a margin (a dead holder's is taken over after). */
export const rolloutLockTtlMs = (config: Config) => (config.rollout.deadlineSeconds + 60) * 1000

/** Runs `work` in a transaction, again when InnoDB picks it as a deadlock victim. */
async function transactionRetryingDeadlocks<T>(db: Db, work: (tx: Tx) => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction(work)
    } catch (error) {
      if (!isDeadlock(error) || attempt >= attempts) throw error
      await Bun.sleep(5 + Math.random() * 20 * attempt)
    }
  }
}

/** What a failed cluster call says, for a failure reason or an answer. */
export const clusterReason = (error: unknown) => (error instanceof ClusterError ? `${error.kind}: ${error.message}` : 'the cluster call failed')

export interface RevisionChange {
  reason: DeploymentReason
  inputs: RevisionInputs
  /** For a rollback: the revision restored (its number names the render, so its manifests come back exactly). */
  rolledBackFrom?: number
  /** The revision number the render carries, when not its own or rolledBackFrom (a rollback to a rollback: the number its manifests carry). */
  renderAs?: number
  /** Renders the revision (the deployment module does: it knows the scaling windows and settings). */
  render(inputs: RevisionInputs, revision: number): Promise<RenderedServe>
  /** Values for the Secrets the render references (the MLflow password). */
  secrets?: { mlflowPassword?: string }
  /** Also store this infra config, in the same transaction (an infra change, a rollback's restore, a one-click). */
  storeInfra?: boolean
  /** Extra audit fields. */
  summary?: Record<string, unknown>
  /** The status the route answers, for the audit entry: 201 (a deploy: a revision created), 200 (an infra PATCH). */
  auditStatus?: number
  /**
   * An automatic rollback: the rollout that failed, marked `failed` in the transaction that records
   * this revision (the lock passes from it to this one); once this one is applied, its `rolled_back_to`.
   */
  replacesFailed?: { deploymentId: number; reason: string }
  /** Another way to start than applying the whole render (a canary beside the active revision), where it applies. */
  startAs?: StartHooks
}

/** Chooses, from the placement and the table's outcome, another way to start a revision; undefined: apply it whole. */
export type StartHooks = (
  view: PlacementView,
  outcome: Outcome,
  change: Pick<RevisionChange, 'reason' | 'inputs'>,
) =>
  | {
      apply(row: DeploymentRow, rendered: RenderedServe): Promise<void>
      /** `storedBefore`: the infra config stored before this change stored its own (an infra change's). */
      recorded(tx: Tx, row: DeploymentRow, context: { actor: string; now: Date; storedBefore?: InfraSnapshot }): Promise<void>
    }
  | undefined

/** Ends the progress rows of the canaries among `revisions` (a condition on deployments) whose revision ends some other way: interrupted, undeployed, activated, failed while promoted. */
export async function closeCanary(db: Executor, revisions: SQL | undefined, phase: 'promoted' | 'rolled-back' | 'aborted') {
  await db
    .update(canaryRollouts)
    .set({ phase })
    .where(
      and(
        inArray(canaryRollouts.deploymentId, db.select({ id: deployments.id }).from(deployments).where(revisions)),
        inArray(canaryRollouts.phase, ['stepping', 'promoting']),
      ),
    )
}

/** The table's command a revision's reason stands for. */
function commandOf(reason: DeploymentReason): PlacementCommand {
  if (reason === 'rollback') return 'rollback'
  if (reason === 'infra-update') return 'infra PATCH'
  if (reason === 'auto-rollback') return 'rollout failed'
  return 'deploy'
}

/** 409 CHANGE_IN_PROGRESS for a change the table refuses, naming what is in flight and what may interrupt it. */
function refusal(view: PlacementView, environment: string): AppError<'CHANGE_IN_PROGRESS'> {
  const revision = view.inFlight?.revision
  if (view.state === 'active+canary') {
    return new AppError(409, 'CHANGE_IN_PROGRESS', `Revision ${revision} of this serve runs as a canary in ${environment} (${view.canary?.weight ?? 0} % of traffic); promote it, abort it, or undeploy first`)
  }
  return new AppError(409, 'CHANGE_IN_PROGRESS', `Revision ${revision} of this serve is rolling out in ${environment}; retry when it ends (an undeploy, a rollback or an infra change may interrupt it)`)
}

/**
 * deploy / rollback / infra change / one-click: records the revision (`pending`) with the lock, the
 * audit entry and (storeInfra) its infra config in one transaction, applies it, and marks it
 * `deploying` (the tracker follows it) — cancelling the rollout it preempted, if any.
 */
export async function startRevision(deps: PlacementDeps, audit: AuditContext, subject: Subject, change: RevisionChange): Promise<DeploymentRow> {
  const { db, config } = deps
  const key = lockKey(subject)
  const view = await readPlacement(db, key)
  const outcome = TRANSITIONS[view.state][commandOf(change.reason)]
  if (outcome === 'refuse') throw refusal(view, subject.environment.name)
  if (outcome !== 'start' && outcome !== 'preempt' && outcome !== 'roll back') throw new AppError(409, 'CHANGE_IN_PROGRESS', `No ${change.reason} now: the placement in ${subject.environment.name} is ${view.state}`)
  const { row, rendered, preempted, previousInfra } = await recordRevision(deps, audit, subject, change, outcome !== 'start')
  const startedAs = change.startAs?.(view, outcome, change)
  try {
    if (startedAs) await startedAs.apply(row, rendered)
    else await deps.drivers.for(clusterTarget(subject)).apply(clusterTarget(subject), rendered, { mlflowPassword: change.secrets?.mlflowPassword ?? config.mlflow.password })
  } catch (error) {
    const reason = clusterReason(error)
    await transactionRetryingDeadlocks(db, async (tx) => {
      await tx
        .update(deployments)
        .set({ status: 'failed', failureReason: `apply failed: ${reason}`.slice(0, 2048), endedAt: new Date(), ...(appliedSome(error) ? { appliedAt: new Date() } : {}) })
        .where(and(eq(deployments.id, row.id), eq(deployments.status, 'pending')))
      // The config stored with it goes back too: else a retry of the same PATCH "changes nothing" and never deploys it.
      if (previousInfra) await storeInfraColumns(tx, key, previousInfra)
      if (change.replacesFailed) await tx.update(deployments).set({ rolledBackTo: null }).where(eq(deployments.id, change.replacesFailed.deploymentId))
      // A preempted rollout gets its lock back, so that it is still tracked and released as before (a failed one has ended).
      if (preempted && !change.replacesFailed) await handBackChangeLock(tx, key, preempted)
      else await releaseChangeLock(tx, key, row.id)
    })
    deps.log.warn('apply failed', { serve: subject.serve.name, env: subject.environment.name, revision: row.revision, reason })
    throw new AppError(502, 'CLUSTER_FAILED', `Applying revision ${row.revision} to ${subject.environment.name} failed (${reason}); the revision is marked failed and the request can be retried`)
  }
  await transactionRetryingDeadlocks(db, async (tx) => {
    const now = new Date()
    await tx.update(deployments).set({ status: 'deploying', appliedAt: now }).where(and(eq(deployments.id, row.id), eq(deployments.status, 'pending')))
    // A canary leaves the active revision's bounds in force: its own are applied when it is promoted.
    if (startedAs) await startedAs.recorded(tx, row, { actor: audit.actor.name, now, ...(previousInfra ? { storedBefore: infraSnapshotOf(subject.serve, previousInfra) } : {}) })
    else if (subject.serve.type === 'api') await recordAppliedBounds(tx, key, appliedBoundsOf(row))
    // The rollouts this one interrupted (newer than the active one, still in flight) end here.
    const interrupted = and(ofPlacement(key), eq(deployments.status, 'deploying'), ne(deployments.id, row.id))
    await closeCanary(tx, interrupted, 'aborted')
    await tx
      .update(deployments)
      .set({ status: 'cancelled', failureReason: `interrupted by revision ${row.revision} (${change.reason})`, endedAt: now })
      .where(interrupted)
    if (change.replacesFailed) {
      await recordEvent(tx, change.replacesFailed.deploymentId, {
        kind: 'auto-rollback',
        actor: audit.actor.name,
        detail: `rolled back automatically: revision ${row.revision} restores revision ${change.rolledBackFrom}`,
      })
    }
  })
  return deploymentById(db, row.id)
}

/** Marks an in-flight revision failed (a no-op once it has ended); answers whether it did. */
export async function failRevision(db: Executor, id: number, reason: string, also: { rolledBackTo?: number } = {}): Promise<boolean> {
  const ended = await db
    .update(deployments)
    .set({ status: 'failed', failureReason: reason.slice(0, 2048), endedAt: new Date(), ...also })
    .where(and(eq(deployments.id, id), inArray(deployments.status, [...IN_FLIGHT_STATUSES])))
  return affectedRows(ended) > 0
}

/** Thrown in an automatic rollback's transaction when the failed rollout has ended meanwhile (another replica handled it). */
export class AlreadyEnded extends Error {}

/** A Kubernetes apply that failed after some objects were written (the driver says how far it got). */
const appliedSome = (error: unknown) => error instanceof ClusterError && (error.applied?.length ?? 0) > 0

async function recordRevision(
  deps: PlacementDeps,
  audit: AuditContext,
  subject: Subject,
  change: RevisionChange,
  preempt: boolean,
): Promise<{ row: DeploymentRow; rendered: RenderedServe; preempted?: Acquired['preempted']; previousInfra?: InfraColumns }> {
  const { db } = deps
  const key = lockKey(subject)
  for (let attempt = 0; attempt < 10; attempt++) {
    // Spread the retries of requests that collided, so that the next round finds the winner's lock.
    if (attempt > 0) await Bun.sleep(5 + Math.random() * 20 * attempt)
    const revision = await nextRevisionNumber(db, subject.serve.id)
    const rendered = await change.render(change.inputs, change.renderAs ?? change.rolledBackFrom ?? revision)
    try {
      const { id, preempted, previousInfra } = await db.transaction(async (tx) => {
        // The lock and the revision commit together: whoever is refused can always name the revision.
        const acquired = await acquireChangeLock(tx, key, {
          operation: change.reason,
          requestId: audit.requestId,
          ttlMs: rolloutLockTtlMs(deps.config),
          preempt,
        })
        const [inserted] = await tx
          .insert(deployments)
          .values({
            ...key,
            revision,
            reason: change.reason,
            rolledBackFrom: change.rolledBackFrom ?? null,
            artifactVersion: change.inputs.artifactVersion,
            image: change.inputs.image,
            deploymentConfig: change.inputs.deploymentConfig,
            infraSnapshot: change.inputs.infraSnapshot,
            rendered: rendered as unknown as Record<string, unknown>,
            manifestsYaml: toYaml(rendered.manifests),
            status: 'pending',
            createdBy: audit.actor.name,
            requestId: audit.requestId,
          })
          .$returningId()
        const deploymentId = Number(inserted?.id)
        await attachDeployment(tx, key, deploymentId)
        if (change.replacesFailed) {
          const failing = change.replacesFailed
          if (acquired.preempted?.deploymentId !== failing.deploymentId) throw new AlreadyEnded()
          // Named at once, so that whoever reads it failed also reads what replaces it (reset if this one's apply fails).
          if (!(await failRevision(tx, failing.deploymentId, failing.reason, { rolledBackTo: revision }))) throw new AlreadyEnded()
          await closeCanary(tx, eq(deployments.id, failing.deploymentId), 'rolled-back')
          await recordEvent(tx, failing.deploymentId, { kind: 'rollout-failed', actor: audit.actor.name, detail: failing.reason })
        }
        const previousInfra = change.storeInfra ? storedInfraColumns(await infraConfigRow(tx, key)) : undefined
        if (change.storeInfra) await storeInfraColumns(tx, key, infraColumnsOf(change.inputs.infraSnapshot))
        await recordAudit(tx, audit, {
          resourceType: 'serve',
          resourceName: subject.serve.name,
          statusCode: change.auditStatus ?? 201,
          summary: {
            env: subject.environment.name,
            revision,
            reason: change.reason,
            artifact_version: change.inputs.artifactVersion,
            rolled_back_from: change.rolledBackFrom ?? null,
            ...(acquired.preempted ? { [change.replacesFailed ? 'failed_revision' : 'interrupts_revision']: acquired.preempted.revision } : {}),
            ...(change.storeInfra ? { infra_config: change.inputs.infraSnapshot } : {}),
            ...change.summary,
          },
        })
        return { id: deploymentId, preempted: acquired.preempted, previousInfra }
      })
      return { row: await deploymentById(db, id), rendered, preempted, previousInfra }
    } catch (error) {
      // Another environment of the same serve took this revision number a moment ago, or concurrent
      // requests deadlocked on the lock row: either way, run again (the loser then sees the lock).
      if (!isDuplicateKey(error) && !isDeadlock(error)) throw error
    }
  }
  throw new AppError(409, 'CHANGE_IN_PROGRESS', 'Too many concurrent changes of this serve; retry')
}

/** The infra_configs columns of a row as stored (what a failed apply puts back). */
function storedInfraColumns(row: InfraConfigRow | undefined): InfraColumns | undefined {
  if (!row) return undefined
  const { backendType, cores, memory, minReplicas, maxReplicas, nodeCapacityType, targetCpuUtilization, additionalHosts, workflowConfig } = row
  return { backendType, cores, memory, minReplicas, maxReplicas, nodeCapacityType, targetCpuUtilization, additionalHosts, workflowConfig }
}

export async function storeInfraColumns(tx: Executor, key: LockKey, columns: InfraColumns) {
  await tx.update(infraConfigs).set(columns).where(and(eq(infraConfigs.serveId, key.serveId), eq(infraConfigs.environmentId, key.environmentId)))
}

/**
 * An infra PATCH: a config that changes nothing starts nothing; on a placement with nothing deployed
 * the config is stored; otherwise a revision carrying it (with the artifact and deployment config of
 * the rollout in flight, else the active revision) supersedes whatever is rolling out.
 */
export async function changeInfraConfig(
  deps: PlacementDeps,
  audit: AuditContext,
  subject: Subject,
  change: { next: InfraColumns; summary: Record<string, unknown>; render: RevisionChange['render']; startAs?: StartHooks },
  /** Throws when the environment's cluster cannot be reached; called where something is deployed. */
  ensureConfigured: () => void,
): Promise<{ row: InfraConfigRow; revision: DeploymentRow | null }> {
  const { db } = deps
  const key = lockKey(subject)
  const current = await infraConfigRow(db, key)
  if (!current) throw new AppError(404, 'NOT_FOUND', `Infra config of serve ${subject.serve.name} for environment ${subject.environment.name} not found`)
  const view = await readPlacement(db, key)
  if (view.inFlight || view.active) ensureConfigured()
  const next = infraSnapshotOf(subject.serve, change.next)
  if (sameSnapshot(infraSnapshotOf(subject.serve, current), next)) {
    await recordAudit(db, audit, { resourceType: 'serve', resourceName: subject.serve.name, statusCode: 200, summary: { env: subject.environment.name, ...change.summary, unchanged: true, started_revision: null } })
    return { row: current, revision: null }
  }
  const basis = view.inFlight ?? view.active
  if (TRANSITIONS[view.state]['infra PATCH'] === 'store' || !basis) {
    await transactionRetryingDeadlocks(db, async (tx) => {
      // Taken and released in the transaction: a change that starts meanwhile waits for this one.
      await acquireChangeLock(tx, key, { operation: 'infra-update', requestId: audit.requestId, ttlMs: 60_000, preempt: false })
      await storeInfraColumns(tx, key, change.next)
      await recordAudit(tx, audit, { resourceType: 'serve', resourceName: subject.serve.name, statusCode: 200, summary: { env: subject.environment.name, ...change.summary, started_revision: null } })
      await releaseRequestLock(tx, key, audit.requestId)
    })
    return { row: (await infraConfigRow(db, key)) as InfraConfigRow, revision: null }
  }
  const revision = await startRevision(deps, audit, subject, {
    reason: 'infra-update',
    inputs: { artifactVersion: basis.artifactVersion, image: basis.image, deploymentConfig: basis.deploymentConfig, infraSnapshot: next },
    render: change.render,
    ...(change.startAs ? { startAs: change.startAs } : {}),
    storeInfra: true,
    summary: change.summary,
    auditStatus: 200,
  })
  return { row: (await infraConfigRow(db, key)) as InfraConfigRow, revision }
}

/**
 * Removes the serve's objects from the environment (by label) and marks what was live: the active
 * revision `undeployed`, one rolling out `cancelled`. With nothing ever applied, it answers at once.
 */
export async function undeployPlacement(deps: PlacementDeps, audit: AuditContext, subject: Subject, ensureConfigured: () => void): Promise<{ undeployedRevision: number | null }> {
  const { db } = deps
  const key = lockKey(subject)
  const view = await readPlacement(db, key)
  if (TRANSITIONS[view.state].undeploy === 'nothing') return { undeployedRevision: null }
  ensureConfigured()
  if (view.canary?.phase === 'stepping') {
    // Removing both sides while a tracker takes a step would let the step put the canary back.
    const outcome = await underCanaryLease(db, view.canary.deploymentId, () => removePlacement(deps, audit, subject))
    if (outcome.kind === 'busy') throw new AppError(409, 'CHANGE_IN_PROGRESS', `The canary of ${subject.serve.name} in ${subject.environment.name} is being changed (a step or a rollback) right now; retry in a moment`)
    if (outcome.kind === 'done') return outcome.value
  }
  return removePlacement(deps, audit, subject)
}

/** Undeploy's work: takes the lock over, removes by label, marks what was live. */
async function removePlacement(deps: PlacementDeps, audit: AuditContext, subject: Subject): Promise<{ undeployedRevision: number | null }> {
  const { db } = deps
  const key = lockKey(subject)
  await transactionRetryingDeadlocks(db, (tx) => acquireChangeLock(tx, key, { operation: 'undeploy', requestId: audit.requestId, ttlMs: 5 * 60_000, preempt: true }))
  try {
    await deps.drivers.for(clusterTarget(subject)).remove(clusterTarget(subject))
  } catch (error) {
    await transactionRetryingDeadlocks(db, async (tx) => {
      // Give a preempted rollout its lock back: nothing changed.
      const inFlight = await newestWithStatus(tx, key, ['deploying'])
      if (inFlight) await handBackChangeLock(tx, key, { deploymentId: inFlight.id, operation: inFlight.reason })
      else await releaseRequestLock(tx, key, audit.requestId)
    })
    throw new AppError(502, 'CLUSTER_FAILED', `Removing ${subject.serve.name} from ${subject.environment.name} failed (${clusterReason(error)}); nothing was changed and the request can be retried`)
  }
  return transactionRetryingDeadlocks(db, async (tx) => {
    const now = new Date()
    const active = await newestWithStatus(tx, key, ['active'])
    if (active) await tx.update(deployments).set({ status: 'undeployed', endedAt: now }).where(eq(deployments.id, active.id))
    const inFlight = and(ofPlacement(key), inArray(deployments.status, [...IN_FLIGHT_STATUSES]))
    await closeCanary(tx, inFlight, 'aborted')
    await tx.update(deployments).set({ status: 'cancelled', failureReason: 'interrupted by an undeploy', endedAt: now }).where(inFlight)
    await tx.update(deployments).set({ removedAt: now }).where(and(ofPlacement(key), isNotNull(deployments.appliedAt), isNull(deployments.removedAt)))
    await recordAudit(tx, audit, { resourceType: 'serve', resourceName: subject.serve.name, statusCode: 200, summary: { env: subject.environment.name, undeployed_revision: active?.revision ?? null } })
    await releaseChangeLock(tx, key)
    return { undeployedRevision: active?.revision ?? null }
  })
}
