/**
 * Progressive delivery: a revision deployed with the canary strategy beside an active one runs as a
 * second Deployment and takes traffic step by step (`canary.steps`), promoted when healthy for
 * `step_seconds`, rolled back when not (README "Progressive delivery"). Its progress is a row of
 * `canary_rollouts`; the rollout tracker moves it on whichever replica ticks. One actor at a time
 * changes a canary (its lease, locks.ts: the trackers of two replicas, a tick and a user's promote or
 * abort, an undeploy), and each move is also a conditional update on (phase, step). The cluster is
 * changed first, the row after: a step the cluster refused is taken again at the next tick.
 */
import { and, eq } from 'drizzle-orm'
import type { WorkloadStatus } from '../../cluster/driver'
import { affectedRows, type Executor } from '../../db/client'
import { type CanaryConfig, type CanaryRolloutRow, canaryRollouts, type DeploymentRow, deployments, type InfraSnapshot } from '../../db/schema'
import type { AuditContext } from '../../lib/audit'
import { recordAudit } from '../../lib/audit-log'
import { AppError } from '../../lib/errors'
import { canaryName, canaryObjectRefs, canaryObjects, canaryReplicas, type RenderedServe, stableRouting, workloadName } from '../../render'
import { type LeaseOutcome, releaseChangeLock, underCanaryLease } from './locks'
import { infraColumnsOf, isApiSnapshot } from './revision-inputs'
import { appliedBoundsOf, clusterReason, clusterTarget, lockKey, type PlacementDeps, readPlacement, recordAppliedBounds, recordEvent, type StartHooks, storeInfraColumns, type Subject, trackerAudit } from './service'
import { TRANSITIONS } from './transitions'

const renderOf = (row: DeploymentRow) => row.rendered as unknown as RenderedServe
const usesIstio = (rendered: RenderedServe) => rendered.manifests.some((object) => object.kind === 'VirtualService')
const maxReplicasOf = (row: DeploymentRow) => (isApiSnapshot(row.infraSnapshot) ? row.infraSnapshot.max_replicas : 1)
const canaryConfigOf = (row: DeploymentRow): CanaryConfig => {
  const config = row.deploymentConfig.canary
  if (!config) throw new Error(`revision ${row.revision} has no canary config`)
  return config
}

/** Whether a revision starting beside an active one runs as a canary: a deploy or an infra change with the canary strategy and a step below 100 (rollbacks never do). */
const startsAsCanary = (reason: DeploymentRow['reason'], config: DeploymentRow['deploymentConfig']) =>
  config.deployment_strategy === 'canary' && (reason === 'deploy' || reason === 'infra-update') && (config.canary?.steps[0] ?? 100) < 100

/** The stable side's pod count, which the canary's follows in proportion (an autoscaled Deployment: what its controller runs). */
const stableReplicasOf = (stable: WorkloadStatus | undefined) => Math.max(1, stable?.replicas || stable?.desiredReplicas || 1)

/** Applies a canary's first step beside the active revision; answers what its row starts with. */
async function applyFirstStep(deps: PlacementDeps, subject: Subject, row: DeploymentRow, rendered: RenderedServe): Promise<{ weight: number; replicas: number }> {
  const target = clusterTarget(subject)
  const driver = deps.drivers.for(target)
  const weight = canaryConfigOf(row).steps[0] as number
  const stable = await driver.workload(target, workloadName(rendered))
  const replicas = canaryReplicas(stableReplicasOf(stable), weight, maxReplicasOf(row))
  await driver.applyObjects(target, canaryObjects(rendered, { replicas, weight, istio: usesIstio(rendered) }))
  return { weight, replicas }
}

/**
 * How a revision starts when the table says `start` beside an active revision and it asks for a
 * canary: its first step is applied instead of its whole render, and its progress row is recorded
 * with it. Given to placement's startRevision by the deployment module.
 */
export function startAsCanary(deps: PlacementDeps, subject: Subject): StartHooks {
  return (view, outcome, change) => {
    const stable = view.active
    if (outcome !== 'start' || !stable || !startsAsCanary(change.reason, change.inputs.deploymentConfig)) return undefined
    let first: { weight: number; replicas: number } | undefined
    return {
      apply: async (row, rendered) => {
        first = await applyFirstStep(deps, subject, row, rendered)
      },
      recorded: async (tx, row, context) => {
        if (first) await recordCanaryStart(tx, row, stable, first, context)
      },
    }
  }
}

/** Records the canary's progress row and its first event, in the transaction that marks the revision `deploying`. */
async function recordCanaryStart(
  tx: Executor,
  row: DeploymentRow,
  stable: DeploymentRow,
  first: { weight: number; replicas: number },
  { actor, now, storedBefore }: { actor: string; now: Date; storedBefore?: InfraSnapshot },
) {
  await tx.insert(canaryRollouts).values({
    deploymentId: row.id,
    stableDeploymentId: stable.id,
    phase: 'stepping',
    stepIndex: 0,
    weight: first.weight,
    canaryReplicas: first.replicas,
    stepStartedAt: now,
    healthySince: null,
    restoreInfra: storedBefore ?? null,
  })
  await recordEvent(tx, row.id, { kind: 'canary-started', actor, weight: first.weight, detail: `canary at ${first.weight} % (${first.replicas} pods) beside revision ${stable.revision}` }, now)
}

/** Where a step stands: the canary's health, and how long until the next step (null: not healthy yet, or no next step). */
export interface StepHealth {
  readyReplicas: number
  desiredReplicas: number
  restarts: number
  /** Why the canary is rolled back (or held), if it is unhealthy. */
  problem?: string
  ready: boolean
}

export function judgeStep(canary: CanaryRolloutRow, config: CanaryConfig, health: WorkloadStatus | undefined, now: Date): StepHealth {
  const counts = { readyReplicas: health?.readyReplicas ?? 0, desiredReplicas: health?.desiredReplicas ?? 0, restarts: health?.restarts ?? 0 }
  const ready = health !== undefined && counts.desiredReplicas > 0 && counts.readyReplicas >= counts.desiredReplicas
  let problem: string | undefined
  if (!health) problem = 'the canary Deployment is gone'
  else if (counts.restarts > config.max_restarts) problem = `${counts.restarts} container restarts (max_restarts ${config.max_restarts})`
  else if (health.failureReason) problem = health.failureReason
  else if (!ready && now.getTime() - canary.stepStartedAt.getTime() > config.ready_timeout_seconds * 1000) {
    problem = `${counts.readyReplicas}/${counts.desiredReplicas} pods ready after ready_timeout_seconds ${config.ready_timeout_seconds}`
  }
  return { ...counts, ready, ...(problem ? { problem } : {}) }
}

/** Seconds until the next step, when the canary is healthy and stepping. */
export function secondsToNextStep(canary: CanaryRolloutRow, config: CanaryConfig, now: Date): number | null {
  if (canary.phase !== 'stepping' || !canary.healthySince) return null
  return Math.max(0, Math.ceil((canary.healthySince.getTime() + config.step_seconds * 1000 - now.getTime()) / 1000))
}

const ofStep = (canary: CanaryRolloutRow) =>
  and(eq(canaryRollouts.deploymentId, canary.deploymentId), eq(canaryRollouts.phase, 'stepping'), eq(canaryRollouts.stepIndex, canary.stepIndex))

/** The canary's objects of a cluster, and the stable side's Deployment. */
function sides(deps: PlacementDeps, subject: Subject, row: DeploymentRow) {
  const target = clusterTarget(subject)
  const rendered = renderOf(row)
  const name = workloadName(rendered)
  return { target, driver: deps.drivers.for(target), rendered, name, istio: usesIstio(rendered) }
}

/**
 * The tracker's look at a canary: rolled back (or held, with `"auto_rollback": false`) when
 * unhealthy; its replicas kept in proportion to the stable side's (a scaling window moves both);
 * moved to the next step once healthy for `step_seconds`. Skipped while another actor changes it.
 */
export async function tickCanary(deps: PlacementDeps, subject: Subject, row: DeploymentRow, autoRollback: boolean): Promise<void> {
  await underCanaryLease(deps.db, row.id, (canary) => stepCanary(deps, subject, row, canary, autoRollback))
}

async function stepCanary(deps: PlacementDeps, subject: Subject, row: DeploymentRow, canary: CanaryRolloutRow, autoRollback: boolean): Promise<void> {
  const config = canaryConfigOf(row)
  const { target, driver, rendered, name, istio } = sides(deps, subject, row)
  const [health, stable] = await Promise.all([driver.workload(target, canaryName(name)), driver.workload(target, name)])
  const now = new Date()
  const judged = judgeStep(canary, config, health, now)
  if (judged.problem) {
    const outcome = TRANSITIONS['active+canary'][autoRollback ? 'rollout failed' : 'rollout failed, no auto-rollback']
    if (outcome === 'abort') {
      await endCanary(deps, subject, row, canary, {
        status: 'failed',
        reason: `canary unhealthy at step ${canary.stepIndex + 1} (${canary.weight} %): ${judged.problem}`,
        audit: trackerAudit('CANARY-ROLLBACK', row.id),
      })
    }
    return // 'hold': it stays at its step until promoted, aborted or undeployed
  }
  const replicas = canaryReplicas(stableReplicasOf(stable), canary.weight, maxReplicasOf(row))
  if (replicas !== canary.canaryReplicas) {
    await driver.applyObjects(target, canaryObjects(rendered, { replicas, weight: canary.weight, istio }))
    await deps.db.update(canaryRollouts).set({ canaryReplicas: replicas }).where(ofStep(canary))
    return // the new pods are judged from the next tick
  }
  if (!judged.ready) {
    if (canary.healthySince) await deps.db.update(canaryRollouts).set({ healthySince: null }).where(ofStep(canary))
    return
  }
  if (!canary.healthySince) {
    await deps.db.update(canaryRollouts).set({ healthySince: now }).where(ofStep(canary))
    return
  }
  if (now.getTime() - canary.healthySince.getTime() >= config.step_seconds * 1000) {
    await advance(deps, subject, row, canary, { full: false, audit: trackerAudit('CANARY-STEP', row.id), why: `healthy for ${config.step_seconds}s` })
  }
}

/**
 * The next step (or with `full` the last, 100 %): at a step below 100 the canary's replicas and
 * weight change; at 100 the revision's full render is applied (the stable Deployment rolls to it and
 * the canary's objects are pruned) and it rolls out as a whole. Answers false when another actor moved
 * the canary first.
 */
async function advance(
  deps: PlacementDeps,
  subject: Subject,
  row: DeploymentRow,
  canary: CanaryRolloutRow,
  how: { full: boolean; audit: AuditContext; why: string },
): Promise<boolean> {
  const config = canaryConfigOf(row)
  const { target, driver, rendered, name, istio } = sides(deps, subject, row)
  const next = how.full ? config.steps.length - 1 : canary.stepIndex + 1
  const weight = config.steps[next] as number
  const promoting = weight >= 100
  const now = new Date()
  let replicas = canary.canaryReplicas
  if (promoting) {
    await driver.apply(target, rendered, { mlflowPassword: deps.config.mlflow.password })
  } else {
    replicas = canaryReplicas(stableReplicasOf(await driver.workload(target, name)), weight, maxReplicasOf(row))
    await driver.applyObjects(target, canaryObjects(rendered, { replicas, weight, istio }))
  }
  const moved = await deps.db.transaction(async (tx) => {
    const updated = await tx
      .update(canaryRollouts)
      .set({ phase: promoting ? 'promoting' : 'stepping', stepIndex: next, weight, canaryReplicas: replicas, stepStartedAt: now, healthySince: null })
      .where(ofStep(canary))
    if (affectedRows(updated) === 0) return false
    const detail = promoting
        ? `promoted to 100 % (${how.why}): revision ${row.revision} replaces the stable one as a rolling update`
        : `step ${next + 1} of ${config.steps.length}: ${weight} % (${replicas} pods; ${how.why})`
    await recordEvent(tx, row.id, { kind: promoting ? 'canary-promoted' : 'canary-step', actor: how.audit.actor.name, weight, detail }, now)
    // Its full render is applied now: its bounds are what the autoscaler has.
    if (promoting) await recordAppliedBounds(tx, lockKey(subject), appliedBoundsOf(row))
    await recordAudit(tx, how.audit, {
      resourceType: 'serve',
      resourceName: subject.serve.name,
      statusCode: 200,
      summary: { env: subject.environment.name, revision: row.revision, canary_step: next + 1, weight, ...(how.full ? { full: true } : {}) },
    })
    return true
  })
  return moved
}

async function removeCanaryObjects(deps: PlacementDeps, subject: Subject, row: DeploymentRow) {
  const { target, driver, name, istio } = sides(deps, subject, row)
  await driver.removeObjects(target, canaryObjectRefs(name, istio))
  if (!istio) return
  // All traffic back to the stable side: the active revision's own routing.
  const [stable] = await deps.db
    .select()
    .from(deployments)
    .where(and(eq(deployments.serveId, subject.serve.id), eq(deployments.environmentId, subject.environment.id), eq(deployments.status, 'active')))
    .limit(1)
  if (stable) await driver.applyObjects(target, stableRouting(renderOf(stable)))
}

/**
 * Back to the stable revision: the canary's objects removed (and under Istio the stable routing
 * applied), then the revision ended — `failed` (rolled back, unhealthy) or `cancelled` (aborted) — with
 * `rolled_back_to` naming the stable revision, the lock released. Answers false when it had ended.
 */
async function endCanary(
  deps: PlacementDeps,
  subject: Subject,
  row: DeploymentRow,
  canary: CanaryRolloutRow,
  how: { status: 'failed' | 'cancelled'; reason: string; audit: AuditContext },
): Promise<boolean> {
  await removeCanaryObjects(deps, subject, row)
  const key = lockKey(subject)
  return deps.db.transaction(async (tx) => {
    const now = new Date()
    const phase = how.status === 'failed' ? 'rolled-back' : 'aborted'
    const closed = await tx
      .update(canaryRollouts)
      .set({ phase })
      .where(and(eq(canaryRollouts.deploymentId, canary.deploymentId), eq(canaryRollouts.phase, 'stepping')))
    if (affectedRows(closed) === 0) return false
    const [stable] = await tx.select({ revision: deployments.revision }).from(deployments).where(eq(deployments.id, canary.stableDeploymentId)).limit(1)
    // An infra change's canary stored its config: what was stored before it is what runs again.
    if (canary.restoreInfra) await storeInfraColumns(tx, key, infraColumnsOf(canary.restoreInfra))
    await tx
      .update(deployments)
      .set({ status: how.status, failureReason: how.reason.slice(0, 2048), endedAt: now, removedAt: now, rolledBackTo: stable?.revision ?? null })
      .where(and(eq(deployments.id, row.id), eq(deployments.status, 'deploying')))
    await recordEvent(tx, row.id, { kind: how.status === 'failed' ? 'canary-rolled-back' : 'canary-aborted', actor: how.audit.actor.name, weight: 0, detail: how.reason }, now)
    await recordAudit(tx, how.audit, {
      resourceType: 'serve',
      resourceName: subject.serve.name,
      statusCode: 200,
      summary: { env: subject.environment.name, revision: row.revision, canary: phase, at_weight: canary.weight, reason: how.reason, rolled_back_to: stable?.revision ?? null },
    })
    await releaseChangeLock(tx, key, row.id)
    return true
  })
}

const cannotReach = (subject: Subject, error: unknown) =>
  new AppError(
    502,
    'CLUSTER_FAILED',
    `Changing the canary of ${subject.serve.name} in ${subject.environment.name} failed (${clusterReason(error)}); nothing was recorded and the request can be retried`,
  )

/** The canary in flight, or 409 NO_CANARY (the table's `no canary`). */
async function canaryInFlight(deps: PlacementDeps, subject: Subject, command: 'promote' | 'abort') {
  const view = await readPlacement(deps.db, lockKey(subject))
  if (TRANSITIONS[view.state][command] === 'no canary' || !view.inFlight || !view.canary) {
    throw new AppError(409, 'NO_CANARY', `No canary of ${subject.serve.name} runs in ${subject.environment.name} (${view.state}): nothing to ${command}`)
  }
  return { row: view.inFlight, canary: view.canary }
}

/** A user's change of the canary in flight, under its lease: 409 while another actor changes it or once it ended, 502 when the cluster fails. */
async function byHand(deps: PlacementDeps, subject: Subject, command: 'promote' | 'abort', work: (row: DeploymentRow, canary: CanaryRolloutRow) => Promise<boolean>): Promise<void> {
  const { row } = await canaryInFlight(deps, subject, command)
  const where = `The canary of ${subject.serve.name} in ${subject.environment.name}`
  let outcome: LeaseOutcome<boolean>
  try {
    outcome = await underCanaryLease(deps.db, row.id, (canary) => work(row, canary))
  } catch (error) {
    if (error instanceof AppError) throw error
    throw cannotReach(subject, error)
  }
  if (outcome.kind === 'busy') throw new AppError(409, 'CHANGE_IN_PROGRESS', `${where} is being changed (a step or a rollback) right now; retry in a moment`)
  if (outcome.kind === 'ended' || !outcome.value) throw new AppError(409, 'NO_CANARY', `${where} ended meanwhile: nothing to ${command}`)
}

/** POST …/promote: the next step, or with `full` straight to 100 %. */
export function promoteCanary(deps: PlacementDeps, audit: AuditContext, subject: Subject, full: boolean): Promise<void> {
  return byHand(deps, subject, 'promote', (row, canary) => advance(deps, subject, row, canary, { full, audit, why: `promoted by ${audit.actor.name}` }))
}

/** POST …/abort: all traffic back to the stable revision, the canary `cancelled`. */
export function abortCanary(deps: PlacementDeps, audit: AuditContext, subject: Subject): Promise<void> {
  return byHand(deps, subject, 'abort', (row, canary) =>
    endCanary(deps, subject, row, canary, { status: 'cancelled', reason: `aborted by ${audit.actor.name} at ${canary.weight} %`, audit }),
  )
}

