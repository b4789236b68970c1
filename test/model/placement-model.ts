/**
 * A model of the placement state machine (README "Deployments", src/modules/placement/transitions.ts)
 * and the fast-check commands that drive the real service against it. The real system is two app
 * instances (two pools, two sets of workers) on one database and ONE fake Kubernetes API; each
 * command says which instance it goes through.
 *
 * The model decides from the README's own transition table (parsed below, not imported from the
 * code it checks) and keeps, per serve: every revision (number, reason, artifact, infra config,
 * deployment config's strategy, canary steps and `auto_rollback`, status, whether it was applied /
 * removed, `rolled_back_from` / `rolled_back_to`, the events recorded about it and by whom, and for a
 * canary its progress), the stored infra config, what each of our objects in the cluster was rendered
 * from, and what the fake cluster's Deployments report (the stable side's pod count, the canary's pods).
 *
 * Automatic rollback: a deploy's `auto_rollback` is the one it sends, else the ACTIVE revision's (an
 * infra-update copies its basis's, a rollback its target's, an `auto-rollback` revision the active
 * revision's). A failed rollout is the table's `rollout failed` when its revision rolls back by itself
 * (auto_rollback not false and not itself an `auto-rollback`), else `rollout failed, no auto-rollback`:
 * `fail` (it is failed, the active revision keeps serving, nothing is re-applied), `fail+remove`
 * (nothing active: it is failed and all our objects are removed, every applied revision `removed`), or
 * `roll back` (it is failed with `rolled_back_to` naming a new `auto-rollback` revision that restores
 * the active one — its inputs and render number, so its manifests are the active revision's — applied
 * and rolling out, the stored infra config the active revision's). The tracker acts as
 * `rollout-tracker` in `deployment_events` and (for the last two) in the audit log.
 *
 * Canaries (README "Progressive delivery"): the deployment strategy and canary settings are, like
 * `auto_rollback`, the deploy's own else the active revision's (copied by an infra-update, a rollback,
 * an auto-rollback). A deploy — or an infra PATCH whose basis has the canary strategy — that the table
 * lets `start` beside an active revision starts a canary (`active+canary`): only a second Deployment
 * `{serve}-prod-canary` is applied, of ⌈stable × w / (100 − w)⌉ pods within 1…max_replicas (stable:
 * the pods the stable Deployment reports), and the stable objects are not touched. Rollbacks and
 * auto-rollbacks never start as canaries, and with nothing active a canary-strategy deploy rolls out
 * whole. Each tick of a tracker on a stepping canary: not healthy (its Deployment gone, a restart —
 * max_restarts is 0 —, a CrashLoopBackOff) is the table's `rollout failed` → `abort` (its objects
 * removed, `failed`, `rolled_back_to` = the stable revision) or `rollout failed, no auto-rollback` →
 * `hold`; else its replicas follow the stable side's; else, not all ready, it is not healthy yet; else
 * healthy from now; else (step_seconds 0: healthy at the tick before) it is the table's `rollout
 * done` → `next step`. A step of 100 applies the revision's full render (the canary Deployment pruned):
 * it then rolls out as any revision (`active+rolling-out`). Promote (`promote`: the next step, or with
 * `full` 100 %) and abort (`abort`: as above, `cancelled`) by hand; 409 NO_CANARY elsewhere (`no
 * canary`). An aborted or rolled-back infra-update canary gives back the infra config stored before
 * its PATCH (the stable revision's, but see `endCanary`). Undeploy removes both sides. The fake cluster has no garbage collector: after every
 * command the pods of a Deployment that is gone are deleted, as Kubernetes would.
 *
 * After every command the real system is compared with the model:
 *
 * (a) the cluster holds, object by object, what the model says (the canary Deployment too: whether it
 *     is there, which revision's render it came from, its replicas); and, unless a 502 left a partial
 *     render (see `dirty`), exactly the render of the last revision applied in full — the one in
 *     flight, else the active one (but after a rollout that failed beside it and did not roll back,
 *     the failed one's: see `intended`) — or none of ours after an undeploy or a `fail+remove`; while a
 *     canary steps, its Deployment holds the canary's render and the stable objects what they held
 *     before it started;
 * (b) the stored infra config (GET …/infra-config/{env}) is that of the same revision: the one in
 *     flight (a canary too), else (once quiescent) the active revision's infra_snapshot, with the same
 *     exception; GET …/deployment/{env} names the active and in-flight revisions and the canary's progress;
 * (c) at most one revision `pending`/`deploying` and one `active` per (serve, env); a `change_locks`
 *     row exactly when a revision is in flight, held by that revision (a stepping canary's too); every
 *     `canary_rollouts` row (phase, step, weight, replicas, healthy or not, stable revision) is the model's;
 * (d) every answer has the status class and code the table gives; a 2xx is reflected (its revision
 *     exists with the expected reason, number, inputs, deployment config); a 4xx/5xx changed nothing —
 *     except that a 502 of an apply records its revision as `failed`, by design (README "Faults"); the
 *     tracker's decisions are reflected too (statuses, `rolled_back_to`, events, audit entries), and a
 *     rollback's or auto-rollback's manifests are the restored revision's, byte for byte.
 */
import { expect } from 'bun:test'
import fc from 'fast-check'
import type { TestResponse } from '../support/context'
import type { FakeKubernetes, StoredObject } from '../support/fake-kubernetes'

export const ENV = 'prod'
export const NS = 'ml'
/** Who the requests act as (both instances use the admin token), and who the tracker acts as. */
const USER = 'admin'
const TRACKER = 'rollout-tracker'

// --- The README's table ---

const STATES = ['empty', 'failed', 'rolling-out', 'active', 'active+rolling-out', 'active+canary'] as const
type State = (typeof STATES)[number]
type TableCommand =
  | 'deploy'
  | 'infra PATCH'
  | 'rollback'
  | 'undeploy'
  | 'promote'
  | 'abort'
  | 'scaling bounds'
  | 'rollout done'
  | 'rollout failed'
  | 'rollout failed, no auto-rollback'
type Table = Record<State, Record<TableCommand, string>>

/** The transition table as the README writes it (a test keeps the code's copy equal to it). */
export function readmeTable(readme: string): Table {
  const lines = readme.split('\n')
  const headerAt = lines.findIndex((line) => line.startsWith('| state \\ command |'))
  if (headerAt < 0) throw new Error('README: the placement transition table is missing')
  const cells = (line: string) => line.split('|').slice(1, -1).map((cell) => cell.trim())
  const commands = cells(lines[headerAt] as string).slice(1) as TableCommand[]
  const table = {} as Table
  for (const line of lines.slice(headerAt + 2)) {
    if (!line.startsWith('| `')) break
    const [state, ...outcomes] = cells(line)
    const name = (state as string).replaceAll('`', '') as State
    table[name] = Object.fromEntries(commands.map((command, i) => [command, outcomes[i] as string])) as Record<TableCommand, string>
  }
  for (const state of STATES) if (!table[state]) throw new Error(`README: no row for ${state}`)
  return table
}

// --- The model ---

export type Artifact = 'v1' | 'v2'
export interface Cfg {
  cores: number
  min: number
  max: number
}
type Status = 'deploying' | 'active' | 'failed' | 'superseded' | 'undeployed' | 'cancelled'
type Reason = 'deploy' | 'infra-update' | 'rollback' | 'auto-rollback'
type Strategy = 'rolling' | 'canary'
/** A deploy's strategy: left out (the active revision's), `rolling`, or the canary with these steps. */
export type StrategyChoice = undefined | 'rolling' | number[]

/**
 * The canary settings every canary deploy sends besides its steps: step_seconds 0 (healthy at two
 * ticks in a row is one step), no restart tolerated, and a ready timeout no run reaches.
 */
export const CANARY_SETTINGS = { step_seconds: 0, max_restarts: 0, ready_timeout_seconds: 600 }
/** README: the steps a canary has when its settings leave them out (never reached: every canary deploy sends its own). */
const DEFAULT_STEPS = [10, 50, 100]

type CanaryPhase = 'stepping' | 'promoting' | 'promoted' | 'rolled-back' | 'aborted'
/** A canary's progress (its `canary_rollouts` row). */
interface Canary {
  phase: CanaryPhase
  /** 0-based index into the steps. */
  step: number
  weight: number
  /** Its Deployment's replicas as last applied. */
  replicas: number
  /** healthy_since set: every pod was ready at a tick of this step. */
  healthy: boolean
  /** The active revision it ran beside. */
  stable: number
}

export interface Rev {
  n: number
  reason: Reason
  artifact: Artifact
  cfg: Cfg
  /** The revision number its manifests carry (a rollback renders the restored revision's). */
  renderNo: number
  rolledBackFrom: number | null
  /** Its deployment config's `auto_rollback` (undefined: left out, which means true). */
  autoRollback: boolean | undefined
  /** Its deployment config's strategy, and with `canary` the steps. */
  strategy: Strategy
  steps: number[] | null
  /** Started as a canary beside the active revision: its progress. */
  canary?: Canary
  /** An infra-update canary: the infra config stored before its PATCH (what the stable side runs). */
  storedBefore?: Cfg
  /** A canary ended by hand (`abort`) or by the tracker (unhealthy: `rolled back`). */
  canaryEnd?: 'aborted' | 'rolled back'
  /**
   * Failed and rolled back automatically: the `auto-rollback` revision that serves in its place; a
   * canary aborted or rolled back: the stable revision.
   */
  rolledBackTo: number | null
  /** Its events, oldest first, as `kind by actor`. */
  events: string[]
  status: Status
  /** applied_at set: some of its objects were written. */
  applied: boolean
  /** removed_at set: an undeploy (or the end of its canary) removed them since. */
  removed: boolean
  /** How it failed: its apply answered 502, its rollout failed, or its canary was unhealthy. */
  failedBy?: 'apply' | 'rollout' | 'canary'
}

const KINDS = ['Service', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress'] as const
type Kind = (typeof KINDS)[number]
/** What one object in the cluster was rendered from. */
interface Content {
  n: number
  renderNo: number
  artifact: Artifact
  cfg: Cfg
}
/** The canary's Deployment: a revision's Deployment under another name, with its own replica count. */
type CanaryContent = Content & { replicas: number }
/** The order in which a removal by label deletes (Service, both Deployments, HorizontalPodAutoscaler, Ingress). */
const REMOVAL_ORDER = ['Service', 'Deployment', 'CanaryDeployment', 'HorizontalPodAutoscaler', 'Ingress'] as const

/** What the canary Deployment's pods report: how many are ready (its status), and whether one restarted or is stuck waiting. */
interface CanaryPods {
  ready: number
  unhealthy: boolean
}
/** A canary Deployment just created: no status, no pods. */
const NO_PODS: CanaryPods = { ready: 0, unhealthy: false }

export interface ServeModel {
  name: string
  revs: Rev[]
  stored: Cfg
  /** Each of our objects in the cluster, by kind, and the revision it was rendered from. */
  cluster: Partial<Record<Kind, Content>> & { CanaryDeployment?: CanaryContent }
  /**
   * A 502 wrote part of a render (an apply that failed after its first objects) or removed part of
   * one (an undeploy that failed after its first deletes). Apply and remove are not atomic, so until
   * the next successful apply or removal the cluster may mix revisions; the object-by-object check
   * still holds, only the "exactly the live revision's render" one is suspended.
   */
  dirty: boolean
  /** The revision whose render was last applied in full (null: none, or removed since). */
  lastApplied: number | null
  /** The pods the stable Deployment's status reports (1 when none): what a canary's replicas follow. */
  stableReplicas: number
  /** What the canary Deployment's pods report (NO_PODS while it is not there). */
  canaryPods: CanaryPods
}

export function newServe(name: string, stored: Cfg): ServeModel {
  return { name, revs: [], stored, cluster: {}, dirty: false, lastApplied: null, stableReplicas: 1, canaryPods: NO_PODS }
}

export interface Model {
  table: Table
  serves: ServeModel[]
}

const active = (s: ServeModel) => s.revs.findLast((r) => r.status === 'active')
const inFlight = (s: ServeModel) => s.revs.findLast((r) => r.status === 'deploying')
/** The canary stepping beside the active revision, if any (it is the revision in flight). */
const stepping = (s: ServeModel) => {
  const f = inFlight(s)
  return f?.canary?.phase === 'stepping' ? f : undefined
}
const mayHoldObjects = (s: ServeModel) => s.revs.some((r) => r.applied && !r.removed)
export function stateOf(s: ServeModel): State {
  const a = active(s)
  const f = inFlight(s)
  if (a) return f ? (f.canary?.phase === 'stepping' ? 'active+canary' : 'active+rolling-out') : 'active'
  return f ? 'rolling-out' : mayHoldObjects(s) ? 'failed' : 'empty'
}
const rev = (s: ServeModel, n: number) => s.revs.find((r) => r.n === n) as Rev
/**
 * Whether a failed rollout of this revision is the table's `rollout failed` (it rolls back, or is
 * removed, by itself) rather than `rollout failed, no auto-rollback`: unless its deployment config says
 * `auto_rollback: false`, or it is itself an automatic rollback.
 */
const rollsBack = (r: Rev) => r.autoRollback !== false && r.reason !== 'auto-rollback'

/**
 * The revision that the cluster's objects and the stored infra config stand for: the one in flight,
 * else the active one — except after a rollout that failed beside an active revision and did not roll
 * back (its `auto_rollback` was false, or it was itself an `auto-rollback` revision; one that rolled
 * back left an `auto-rollback` revision applied after it, which is what the cluster then holds).
 * Nothing then re-applies the active revision: the Deployment keeps the failed revision's spec (Kubernetes keeps
 * the old ReplicaSet's pods serving, which is what README's "the active one keeps serving" means), its
 * HorizontalPodAutoscaler keeps the failed revision's bounds, and the stored infra config stays the
 * one that revision carried (an infra PATCH or a rollback stored it: "the latest intent wins"). So
 * until the next change, the cluster and GET …/infra-config show the failed revision's config, not
 * the active revision's infra_snapshot. Anything else (a cluster or a stored config that no revision
 * in flight, active, or just failed stands for) fails the run.
 *
 * `besideCanary`: what the STABLE objects stand for — a canary stepping beside them is not applied to
 * them, so they stand for what they stood for before it started.
 */
function intended(s: ServeModel, besideCanary = false): Rev | undefined {
  const f = inFlight(s)
  if (f && !(besideCanary && f.canary?.phase === 'stepping')) return f
  const a = active(s)
  if (!a) return undefined
  const last = s.lastApplied === null ? undefined : rev(s, s.lastApplied)
  return last && last.n > a.n && last.failedBy === 'rollout' && !rollsBack(last) && last.rolledBackTo === null ? last : a
}

/** The exception of `intended` holds only for a rollout that failed without rolling back. */
function expectFailedWithoutRollback(s: ServeModel, target: Rev) {
  expect({ serve: s.name, stands: target.n, status: target.status, failedBy: target.failedBy, rollsBack: rollsBack(target), rolledBackTo: target.rolledBackTo }).toEqual({
    serve: s.name,
    stands: target.n,
    status: 'failed',
    failedBy: 'rollout',
    rollsBack: false,
    rolledBackTo: null,
  })
}
const contentOf = (r: Rev): Content => ({ n: r.n, renderNo: r.renderNo, artifact: r.artifact, cfg: r.cfg })
const sameCfg = (a: Cfg, b: Cfg) => a.cores === b.cores && a.min === b.min && a.max === b.max
const showCfg = (c: Cfg) => `${c.cores}c ${c.min}..${c.max}`
/** Whether a Deployment rendered from `content` has the spec a render of `r` gives (image, cpu, revision annotation). */
const sameSpec = (content: Content | undefined, r: Rev) => content !== undefined && content.artifact === r.artifact && content.cfg.cores === r.cfg.cores && content.renderNo === r.renderNo

/** README: ⌈stable × w / (100 − w)⌉ canary pods, within 1…max_replicas. */
const canaryReplicas = (stable: number, weight: number, max: number) => Math.min(Math.max(1, max), Math.max(1, Math.ceil((Math.max(1, stable) * weight) / Math.max(1, 100 - weight))))

/** The object-level effects shared by the commands. */
function removeCanaryDeployment(s: ServeModel) {
  delete s.cluster.CanaryDeployment
  s.canaryPods = NO_PODS // its pods go with it
}
function removeAll(s: ServeModel) {
  s.cluster = {}
  s.canaryPods = NO_PODS
  s.stableReplicas = 1 // a Deployment created again reports nothing yet
  s.dirty = false
  s.lastApplied = null
}
/** A rollout in flight interrupted (by a preempting revision, an undeploy): `cancelled`, its canary (if any) `aborted`. */
function interrupt(r: Rev) {
  r.status = 'cancelled'
  if (r.canary && (r.canary.phase === 'stepping' || r.canary.phase === 'promoting')) r.canary.phase = 'aborted'
}
/** `activate`: the rollout in flight becomes active, the active one superseded; a promoted canary's progress ends `promoted`. */
function activate(s: ServeModel, r: Rev) {
  for (const other of s.revs) if (other.status === 'active') other.status = 'superseded'
  r.status = 'active'
  if (r.canary) r.canary.phase = 'promoted'
}

/** The answer of a deploy or rollback that started a revision (README: 201 Created, the revision `deploying`). */
export const STARTED = 201

export type Fault = { on: 'apply' | 'apply-partial' | 'delete' | 'delete-partial'; status: 500 | 503 }

/** What the model expects of a command: the answer, and the model's new state (applied once the answer matched). */
interface Expectation {
  status: number
  code?: string
  /** Extra checks on a 2xx answer's body. */
  body?: (body: any) => void
  /** The command's effect on the model. */
  commit?: () => void
  /** No cluster call at all (an undeploy of nothing). */
  noClusterCall?: boolean
}

type Draft = Omit<Rev, 'n' | 'status' | 'applied' | 'removed' | 'rolledBackTo' | 'events'>

/**
 * Records a revision and applies it (`start` / `preempt`): what the answer and the model become,
 * given the fault armed for this apply. `beside`: it starts as a canary beside this active revision.
 */
function startRevision(s: ServeModel, draft: Draft, fault: Fault | undefined, success: number, storeInfra: boolean, beside?: Rev): Expectation & { n: number } {
  const n = s.revs.length + 1 // numbered per serve; one environment here
  const r: Rev = { ...draft, n, status: 'deploying', applied: true, removed: false, rolledBackTo: null, events: [] }
  if (beside) {
    // Only the canary's Deployment is applied: an `apply` fault fails its PATCH (nothing written); an
    // `apply-partial` one (the autoscaler's PATCH) is never sent.
    if (fault?.on === 'apply') {
      return { n, status: 502, code: 'CLUSTER_FAILED', commit: () => void s.revs.push({ ...r, status: 'failed', applied: false, failedBy: 'apply' }) }
    }
    const weight = (r.steps as number[])[0] as number
    const replicas = canaryReplicas(s.stableReplicas, weight, r.cfg.max)
    return {
      n,
      status: success,
      commit: () => {
        r.canary = { phase: 'stepping', step: 0, weight, replicas, healthy: false, stable: beside.n }
        if (storeInfra) r.storedBefore = s.stored
        r.events.push(`canary-started by ${USER}`)
        s.revs.push(r)
        s.cluster.CanaryDeployment = { ...contentOf(r), replicas }
        s.canaryPods = NO_PODS
        if (storeInfra) s.stored = r.cfg
      },
    }
  }
  if (fault?.on === 'apply' || fault?.on === 'apply-partial') {
    const partial = fault.on === 'apply-partial'
    return {
      n,
      status: 502,
      code: 'CLUSTER_FAILED',
      commit: () => {
        // By design the failed revision stays in the history (README "Faults"); nothing else changes —
        // the rollout it would have interrupted goes on, the stored infra config stays.
        s.revs.push({ ...r, status: 'failed', applied: partial, failedBy: 'apply' })
        if (partial) {
          // Service and Deployment were written before the HorizontalPodAutoscaler's apply failed.
          s.cluster.Service = contentOf(r)
          s.cluster.Deployment = contentOf(r)
          s.dirty = true
        }
      },
    }
  }
  return {
    n,
    status: success,
    commit: () => {
      for (const other of s.revs) if (other.status === 'deploying') interrupt(other) // the rollout it interrupted
      s.revs.push(r)
      for (const kind of KINDS) s.cluster[kind] = contentOf(r)
      removeCanaryDeployment(s) // pruned (there is none: no revision starts while a canary steps)
      s.dirty = false
      s.lastApplied = n
      if (storeInfra) s.stored = r.cfg
    },
  }
}

/** What a revision's answer says of its deployment config's auto_rollback (null: left out). */
const autoRollbackOf = (body: any) => body.data.api_serve_deployment_config?.auto_rollback ?? null
/** Its strategy and canary settings as the answer (or the row) has them. */
const strategyOf = (config: any) => ({ strategy: config?.deployment_strategy ?? null, canary: config?.canary ?? null })
const expectedStrategy = (r: Pick<Rev, 'strategy' | 'steps'>) => ({ strategy: r.strategy, canary: r.steps ? { steps: r.steps, ...CANARY_SETTINGS } : null })
/** Whether a revision with this deployment config starts as a canary where the table says `start` beside an active revision. */
const startsAsCanary = (r: Pick<Rev, 'strategy' | 'steps'>) => r.strategy === 'canary' && ((r.steps as number[])[0] as number) < 100

/**
 * `autoRollback`: what the deploy sends (undefined: it leaves it out, and inherits the active
 * revision's); `choice`: the strategy it sends (undefined: left out, the active revision's, with its
 * canary settings).
 */
export function expectDeploy(m: Model, s: ServeModel, artifact: Artifact, autoRollback: boolean | undefined, fault?: Fault, choice?: StrategyChoice): Expectation {
  const outcome = m.table[stateOf(s)].deploy
  if (outcome === 'refuse') return { status: 409, code: 'CHANGE_IN_PROGRESS' }
  if (outcome !== 'start') throw new Error(`model: deploy → ${outcome}?`)
  // Left out, they are the ACTIVE revision's (a deploy starts only where nothing is in flight anyway).
  const a = active(s)
  const inherited = autoRollback ?? a?.autoRollback
  const strategy: Strategy = choice === undefined ? (a?.strategy ?? 'rolling') : choice === 'rolling' ? 'rolling' : 'canary'
  const steps = strategy === 'canary' ? (Array.isArray(choice) ? choice : (a?.steps ?? DEFAULT_STEPS)) : null
  const draft: Draft = { reason: 'deploy', artifact, cfg: s.stored, renderNo: s.revs.length + 1, rolledBackFrom: null, autoRollback: inherited, strategy, steps }
  // "with the canary strategy beside an active revision: start the canary" (with nothing active it rolls out whole).
  const beside = a && startsAsCanary(draft) ? a : undefined
  const started = startRevision(s, draft, fault, STARTED, false, beside)
  return {
    ...started,
    body: (body) => {
      expect(body.data).toMatchObject({ revision: started.n, status: 'deploying', reason: 'deploy', artifact_version: artifact, rolled_back_from: null, rolled_back_to: null })
      const config = body.data.api_serve_deployment_config
      expect({ revision: started.n, auto_rollback: autoRollbackOf(body), ...strategyOf(config) }).toEqual({ revision: started.n, auto_rollback: inherited ?? null, ...expectedStrategy(draft) })
    },
  }
}

export type PatchFields = { cores?: number; min_replicas?: number; max_replicas?: number }

export function expectInfraPatch(m: Model, s: ServeModel, fields: PatchFields, fault?: Fault): Expectation {
  const next: Cfg = { cores: fields.cores ?? s.stored.cores, min: fields.min_replicas ?? s.stored.min, max: fields.max_replicas ?? s.stored.max }
  if (next.min > next.max) return { status: 422, code: 'VALIDATION_FAILED' }
  const answered = (startedRevision: number | null) => (body: any) => {
    expect(body.data.started_revision).toBe(startedRevision)
    expect(body.data.api_serve_infra_config).toMatchObject({ cores: next.cores, min_replicas: next.min, max_replicas: next.max })
  }
  // A PATCH that changes nothing starts nothing (README), whatever the state.
  if (sameCfg(next, s.stored)) return { status: 200, body: answered(null) }
  const outcome = m.table[stateOf(s)]['infra PATCH']
  if (outcome === 'store') return { status: 200, body: answered(null), commit: () => void (s.stored = next) }
  if (outcome === 'refuse') return { status: 409, code: 'CHANGE_IN_PROGRESS' }
  if (outcome !== 'start' && outcome !== 'preempt') throw new Error(`model: infra PATCH → ${outcome}?`)
  // The artifact of the rollout in flight, else of the active revision.
  const basis = (inFlight(s) ?? active(s)) as Rev
  // … and its deployment config (auto_rollback, strategy and canary settings with it): with the canary
  // strategy, an infra change that starts beside the active revision is a canary too.
  const draft: Draft = {
    reason: 'infra-update',
    artifact: basis.artifact,
    cfg: next,
    renderNo: s.revs.length + 1,
    rolledBackFrom: null,
    autoRollback: basis.autoRollback,
    strategy: basis.strategy,
    steps: basis.steps,
  }
  const beside = outcome === 'start' && startsAsCanary(draft) ? active(s) : undefined
  const started = startRevision(s, draft, fault, 200, true, beside)
  return { ...started, body: answered(started.n) }
}

export type RollbackTarget = { kind: 'default' } | { kind: 'any'; pick: number } | { kind: 'failed'; pick: number } | { kind: 'missing' }

/** The revision number a rollback names (undefined: the default target). */
export function rollbackRevisionOf(s: ServeModel, target: RollbackTarget): number | undefined {
  switch (target.kind) {
    case 'default':
      return undefined
    case 'missing':
      return s.revs.length + 7
    case 'any':
      return s.revs.length === 0 ? 1 : (s.revs[target.pick % s.revs.length] as Rev).n
    case 'failed': {
      const failed = s.revs.filter((r) => r.status === 'failed' || r.status === 'cancelled')
      const pool = failed.length > 0 ? failed : s.revs
      return pool.length === 0 ? 1 : (pool[target.pick % pool.length] as Rev).n
    }
  }
}

export function expectRollback(m: Model, s: ServeModel, revision: number | undefined, force: boolean, fault?: Fault): Expectation {
  let target: Rev | undefined
  if (revision !== undefined) {
    target = s.revs.find((r) => r.n === revision)
    if (!target) return { status: 404, code: 'NOT_FOUND' }
    if ((target.status === 'failed' || target.status === 'cancelled') && !force) return { status: 409, code: 'REVISION_FAILED' }
  } else {
    // The last revision active before the current one.
    const current = active(s)
    target = s.revs.findLast((r) => r.status === 'superseded' && (!current || r.n < current.n))
    if (!target) return { status: 409, code: 'NOTHING_TO_ROLL_BACK_TO' }
  }
  const outcome = m.table[stateOf(s)].rollback
  if (outcome === 'refuse') return { status: 409, code: 'CHANGE_IN_PROGRESS' }
  if (outcome !== 'start' && outcome !== 'preempt') throw new Error(`model: rollback → ${outcome}?`)
  const t = target
  // "rendered from the earlier revision's own inputs and number: its manifests come back byte for
  // byte" — and the stored infra config becomes the restored revision's.
  // Its deployment config (auto_rollback, strategy with it) is the target's too; a rollback always rolls out whole.
  const draft: Draft = { reason: 'rollback', artifact: t.artifact, cfg: t.cfg, renderNo: t.renderNo, rolledBackFrom: t.n, autoRollback: t.autoRollback, strategy: t.strategy, steps: t.steps }
  const started = startRevision(s, draft, fault, STARTED, true)
  return {
    ...started,
    body: (body) => {
      expect(body.data).toMatchObject({
        revision: started.n,
        status: 'deploying',
        reason: 'rollback',
        rolled_back_from: t.n,
        rolled_back_to: null,
        artifact_version: t.artifact,
        infra_snapshot: { cores: t.cfg.cores, min_replicas: t.cfg.min, max_replicas: t.cfg.max },
      })
      const config = body.data.api_serve_deployment_config
      expect({ revision: started.n, auto_rollback: autoRollbackOf(body), ...strategyOf(config) }).toEqual({ revision: started.n, auto_rollback: t.autoRollback ?? null, ...expectedStrategy(t) })
    },
  }
}

export function expectUndeploy(m: Model, s: ServeModel, fault?: Fault): Expectation {
  const outcome = m.table[stateOf(s)].undeploy
  if (outcome === 'nothing') return { status: 200, noClusterCall: true, body: (body) => expect(body.data.undeployed_revision).toBeNull() }
  if (outcome !== 'remove' && outcome !== 'preempt+remove') throw new Error(`model: undeploy → ${outcome}?`)
  const present = REMOVAL_ORDER.filter((kind) => s.cluster[kind])
  // Removal deletes kind by kind (Service, the Deployments — a canary's too —, HorizontalPodAutoscaler,
  // Ingress): the fault strikes the first DELETE, or the autoscaler's; a DELETE that is never sent cannot fail.
  const failsAt = fault?.on === 'delete' ? present[0] : fault?.on === 'delete-partial' ? present.find((kind) => kind === 'HorizontalPodAutoscaler') : undefined
  if (failsAt) {
    return {
      status: 502,
      code: 'CLUSTER_FAILED',
      commit: () => {
        const deleted = present.slice(0, present.indexOf(failsAt))
        for (const kind of deleted) delete s.cluster[kind]
        if (deleted.includes('CanaryDeployment')) s.canaryPods = NO_PODS
        if (deleted.includes('Deployment')) s.stableReplicas = 1
        if (deleted.length > 0) s.dirty = true
      },
    }
  }
  const undeployed = active(s)?.n ?? null
  return {
    status: 200,
    body: (body) => expect(body.data.undeployed_revision).toBe(undeployed),
    commit: () => {
      for (const r of s.revs) {
        if (r.status === 'active') r.status = 'undeployed'
        if (r.status === 'deploying') interrupt(r)
        if (r.applied) r.removed = true
      }
      removeAll(s)
    },
  }
}

/**
 * The tracker's tick once the Deployment reports the rollout complete (or failed). `outcome`: the
 * table's outcome it follows (for the run's statistics). No fault is ever armed for a tick, so an
 * automatic rollback's apply and a removal succeed. Not for a stepping canary (see `canaryTick`).
 */
export function expectRolloutEnd(m: Model, s: ServeModel, how: 'done' | 'failed'): { commit?: () => void; outcome?: string; sameSpec?: boolean } {
  const r = inFlight(s)
  const command: TableCommand = how === 'done' ? 'rollout done' : r && !rollsBack(r) ? 'rollout failed, no auto-rollback' : 'rollout failed'
  const outcome = m.table[stateOf(s)][command]
  // Nothing rolls out, or its Deployment is gone (a partial removal): the tick changes nothing.
  if (outcome === '—' || !r || !s.cluster.Deployment) return {}
  if (how === 'done') {
    if (outcome !== 'activate') throw new Error(`model: rollout done → ${outcome}?`)
    return { outcome, commit: () => activate(s, r) }
  }
  const failed = (...events: string[]) => {
    r.status = 'failed'
    r.failedBy = 'rollout'
    r.events.push(`rollout-failed by ${TRACKER}`, ...events.map((kind) => `${kind} by ${TRACKER}`))
  }
  switch (outcome) {
    case 'fail': {
      // The active revision (if any) keeps serving; nothing is re-applied; the lock is released; a
      // promoted canary's progress ends `aborted`.
      const why = r.reason === 'auto-rollback' ? 'an auto-rollback' : 'auto_rollback: false'
      return {
        outcome: `${outcome} (${command}: ${why})`,
        commit: () => {
          failed()
          if (r.canary) r.canary.phase = 'aborted'
        },
      }
    }
    case 'fail+remove':
      // Nothing active to return to: all of ours is removed by label, every applied revision `removed`;
      // the stored infra config stays.
      return {
        outcome,
        commit: () => {
          failed('removed')
          for (const other of s.revs) if (other.applied) other.removed = true
          removeAll(s)
        },
      }
    case 'roll back': {
      // A new `auto-rollback` revision restores the active one: its artifact, infra snapshot and
      // deployment config, under its render number (so its manifests are the active revision's); it is
      // applied and rolls out, and the stored infra config becomes the active revision's. The active
      // revision stays active until it completes. A promoted canary's progress ends `rolled-back`.
      const a = active(s) as Rev
      const back = startRevision(
        s,
        { reason: 'auto-rollback', artifact: a.artifact, cfg: a.cfg, renderNo: a.renderNo, rolledBackFrom: a.n, autoRollback: a.autoRollback, strategy: a.strategy, steps: a.steps },
        undefined,
        STARTED,
        true,
      )
      return {
        outcome,
        // The Deployment's spec (image, cpu, revision annotation) is the one the rollout failed with.
        sameSpec: sameSpec(s.cluster.Deployment, a),
        commit: () => {
          failed('auto-rollback')
          if (r.canary) r.canary.phase = 'rolled-back'
          r.rolledBackTo = back.n
          back.commit?.()
        },
      }
    }
    default:
      throw new Error(`model: ${command} → ${outcome}?`)
  }
}

// --- Canaries ---

/**
 * The canary's next step (or with `full` its last, 100 %), by `actor`: below 100 its Deployment is
 * applied again with the replicas of the new weight; at 100 the revision's full render is applied
 * (the stable objects become its render, the canary Deployment is pruned) and it rolls out as a
 * whole. Answers whether the stable Deployment's spec was already the revision's (its generation then
 * does not move).
 */
function advanceCanary(s: ServeModel, r: Rev, full: boolean, actor: string): { promotedSameSpec: boolean } {
  const c = r.canary as Canary
  const steps = r.steps as number[]
  const next = full ? steps.length - 1 : c.step + 1
  const weight = steps[next] as number
  if (weight >= 100) {
    const promotedSameSpec = sameSpec(s.cluster.Deployment, r)
    for (const kind of KINDS) s.cluster[kind] = contentOf(r)
    removeCanaryDeployment(s)
    s.dirty = false
    s.lastApplied = r.n
    Object.assign(c, { phase: 'promoting', step: next, weight, healthy: false })
    r.events.push(`canary-promoted by ${actor}`)
    return { promotedSameSpec }
  }
  const replicas = canaryReplicas(s.stableReplicas, weight, r.cfg.max)
  if (!s.cluster.CanaryDeployment) s.canaryPods = NO_PODS // created again: no status yet
  s.cluster.CanaryDeployment = { ...contentOf(r), replicas }
  Object.assign(c, { step: next, weight, replicas, healthy: false })
  r.events.push(`canary-step by ${actor}`)
  return { promotedSameSpec: false }
}

/**
 * The table's `abort` of a canary: its Deployment removed, the revision `cancelled` (by hand) or
 * `failed` (unhealthy, by the tracker) with `rolled_back_to` = the stable revision and removed_at set,
 * the lock released. An infra change's canary gives the stored infra config back: README "aborted, the
 * stored infra config is the stable revision's again" — again, i.e. what was stored before its PATCH,
 * which is what the stable side runs (GET …/infra-config shows what runs). That is the stable
 * revision's infra_snapshot, except where the stable side runs a rollout that failed beside it without
 * rolling back (see `intended`): then it is that rollout's config.
 */
function endCanary(s: ServeModel, r: Rev, how: 'aborted' | 'rolled back') {
  const c = r.canary as Canary
  removeCanaryDeployment(s)
  r.status = how === 'aborted' ? 'cancelled' : 'failed'
  if (how === 'rolled back') r.failedBy = 'canary'
  r.removed = true
  r.rolledBackTo = c.stable
  r.canaryEnd = how
  c.phase = how === 'aborted' ? 'aborted' : 'rolled-back'
  r.events.push(how === 'aborted' ? `canary-aborted by ${USER}` : `canary-rolled-back by ${TRACKER}`)
  if (r.reason === 'infra-update') s.stored = r.storedBefore as Cfg
}

/** Whether the canary's Deployment is there, none of its pods restarted or waits, and all are ready. */
function canaryHealth(s: ServeModel): { unhealthy: boolean; ready: boolean } {
  const deployment = s.cluster.CanaryDeployment
  if (!deployment) return { unhealthy: true, ready: false } // "the canary Deployment is gone"
  return { unhealthy: s.canaryPods.unhealthy, ready: deployment.replicas > 0 && s.canaryPods.ready >= deployment.replicas }
}

/** One tick of a tracker on the canary stepping beside the active revision: applied to the model; answers what it did. */
function canaryTick(m: Model, s: ServeModel): { outcome: string; promotedSameSpec?: boolean } {
  const r = stepping(s) as Rev
  const c = r.canary as Canary
  const state = stateOf(s)
  const health = canaryHealth(s)
  if (health.unhealthy) {
    const command: TableCommand = rollsBack(r) ? 'rollout failed' : 'rollout failed, no auto-rollback'
    const outcome = m.table[state][command]
    if (outcome === 'abort') endCanary(s, r, 'rolled back')
    else if (outcome !== 'hold') throw new Error(`model: canary ${command} → ${outcome}?`)
    return { outcome: `${command} → ${outcome}` }
  }
  // The canary follows the stable side's pods (a new count is judged from the next tick).
  const replicas = canaryReplicas(s.stableReplicas, c.weight, r.cfg.max)
  if (replicas !== c.replicas) {
    c.replicas = replicas
    s.cluster.CanaryDeployment = { ...(s.cluster.CanaryDeployment as CanaryContent), replicas }
    return { outcome: `its replicas follow the stable side's (${replicas})` }
  }
  if (!health.ready) {
    c.healthy = false
    return { outcome: 'not all ready yet' }
  }
  if (!c.healthy) {
    c.healthy = true
    return { outcome: 'healthy from now' }
  }
  // Healthy for step_seconds (0): the table's `rollout done`.
  const outcome = m.table[state]['rollout done']
  if (outcome !== 'next step') throw new Error(`model: canary rollout done → ${outcome}?`)
  const { promotedSameSpec } = advanceCanary(s, r, false, TRACKER)
  return { outcome: `rollout done → next step${c.phase === 'promoting' ? ' (100 %: promoted)' : ''}`, promotedSameSpec }
}

/**
 * A second tick on what was canary `n` before the first: a canary still stepping ticks again; one
 * promoted by the first tick rolls out, and is complete at once only when its promotion left the
 * stable Deployment's spec as it was and that Deployment reports a complete rollout.
 */
function secondTick(m: Model, s: ServeModel, n: number, promotedSameSpec: boolean | undefined, stableComplete: boolean): string {
  const r = rev(s, n)
  if (r.status !== 'deploying') return 'nothing (ended)'
  if (r.canary?.phase === 'stepping') return canaryTick(m, s).outcome
  if (r.canary?.phase === 'promoting' && promotedSameSpec && stableComplete) {
    activate(s, r)
    return 'activate (its spec was the stable side\'s already)'
  }
  return 'nothing (promoted: rolling out)'
}

export function expectPromote(m: Model, s: ServeModel, full: boolean, fault?: Fault): Expectation {
  const outcome = m.table[stateOf(s)].promote
  if (outcome === 'no canary') return { status: 409, code: 'NO_CANARY', noClusterCall: true }
  if (outcome !== 'promote') throw new Error(`model: promote → ${outcome}?`)
  const r = stepping(s) as Rev
  const c = r.canary as Canary
  const steps = r.steps as number[]
  const next = full ? steps.length - 1 : c.step + 1
  const weight = steps[next] as number
  // The first PATCH is the canary Deployment's (below 100) or the Service's (the full render's).
  if (fault?.on === 'apply') return { status: 502, code: 'CLUSTER_FAILED' }
  if (fault?.on === 'apply-partial' && weight >= 100) {
    return {
      status: 502,
      code: 'CLUSTER_FAILED',
      commit: () => {
        // The full render's Service and Deployment were written before the autoscaler's PATCH failed;
        // the canary steps on (its progress was not moved).
        s.cluster.Service = contentOf(r)
        s.cluster.Deployment = contentOf(r)
        s.dirty = true
      },
    }
  }
  const phase = weight >= 100 ? 'promoting' : 'stepping'
  const replicas = weight >= 100 ? c.replicas : canaryReplicas(s.stableReplicas, weight, r.cfg.max)
  const stable = c.stable
  return {
    status: 200,
    body: (body) =>
      expect({ active: body.data.active?.revision ?? null, inFlight: body.data.in_flight?.revision ?? null, canary: canaryView(body.data.canary) }).toEqual({
        active: stable,
        inFlight: r.n,
        canary: { phase, step: next + 1, weight, canary_replicas: replicas, stable_revision: stable },
      }),
    commit: () => void advanceCanary(s, r, full, USER),
  }
}

export function expectAbort(m: Model, s: ServeModel, fault?: Fault): Expectation {
  const outcome = m.table[stateOf(s)].abort
  if (outcome === 'no canary') return { status: 409, code: 'NO_CANARY', noClusterCall: true }
  if (outcome !== 'abort') throw new Error(`model: abort → ${outcome}?`)
  const r = stepping(s) as Rev
  // Its Deployment's DELETE is the first cluster write (an autoscaler's DELETE is never sent).
  if (fault?.on === 'delete') return { status: 502, code: 'CLUSTER_FAILED' }
  const stable = (r.canary as Canary).stable
  return {
    status: 200,
    body: (body) =>
      expect({ active: body.data.active?.revision ?? null, inFlight: body.data.in_flight?.revision ?? null, canary: body.data.canary }).toEqual({ active: stable, inFlight: null, canary: null }),
    commit: () => endCanary(s, r, 'aborted'),
  }
}

/** The part of GET …/deployment/{env}'s `canary` the model decides. */
const canaryView = (canary: any) =>
  canary ? { phase: canary.phase, step: canary.step, weight: canary.weight, canary_replicas: canary.canary_replicas, stable_revision: canary.stable_revision } : null

// --- The real system ---

export interface Replica {
  name: string
  request(method: string, path: string, body?: unknown): Promise<TestResponse>
  tick(): Promise<void>
}

export interface Stats {
  runs: number
  /** Generated commands run (the quiescence steps after each sequence are not counted). */
  commands: number
  outcomes: Record<string, number>
}

export interface Real {
  replicas: Replica[]
  fake: FakeKubernetes
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>
  stats: Stats
  /** Serve names of this run (model.serves[i].name), so checks can read their rows. */
  serves: string[]
}

function count(real: Real, key: string) {
  real.stats.outcomes[key] = (real.stats.outcomes[key] ?? 0) + 1
}

function arm(fake: FakeKubernetes, fault: Fault | undefined) {
  if (!fault) return
  const message = fault.status === 503 ? 'the API server is shutting down' : 'etcdserver: leader changed'
  const method = fault.on.startsWith('apply') ? 'PATCH' : 'DELETE'
  fake.failNext({ method, status: fault.status, message, ...(fault.on.endsWith('partial') ? { path: /\/horizontalpodautoscalers\// } : {}) })
}

/** Sends one command's request with its fault armed; the fault never outlives the command. */
async function send(real: Real, via: number, fault: Fault | undefined, method: string, path: string, body?: unknown): Promise<TestResponse> {
  real.fake.clearRequests()
  arm(real.fake, fault)
  try {
    return await (real.replicas[via] as Replica).request(method, path, body)
  } finally {
    real.fake.clearFailures()
  }
}

const WRITES = new Set(['PATCH', 'DELETE', 'POST', 'PUT'])

function expectAnswer(real: Real, label: string, answer: TestResponse, expected: Expectation) {
  count(real, `${label} → ${answer.status}${answer.body?.code ? ` ${answer.body.code}` : ''}`)
  if (answer.status !== expected.status || (expected.code && answer.body?.code !== expected.code)) {
    throw new Error(`${label}: expected ${expected.status}${expected.code ? ` ${expected.code}` : ''}, got ${answer.status}: ${JSON.stringify(answer.body)}`)
  }
  if (expected.status < 300) expected.body?.(answer.body)
  if (expected.noClusterCall) expect(real.fake.requests).toEqual([])
  // A refusal (4xx) never reaches the cluster.
  if (expected.status >= 400 && expected.status < 500) expect(real.fake.requests.filter((r) => WRITES.has(r.method))).toEqual([])
}

const stableName = (serve: string) => `${serve}-${ENV}`
const canaryName = (serve: string) => `${serve}-${ENV}-canary`

/**
 * What Kubernetes' garbage collector does and the fake does not: the pods of a Deployment that is gone
 * go with it (else a later canary's Deployment, whose selector is the same, would count them).
 */
async function collectPods(m: Model, real: Real) {
  const pods = real.fake.list('Pod')
  for (const s of m.serves) {
    for (const owner of [stableName(s.name), canaryName(s.name)]) {
      if (real.fake.get('Deployment', NS, owner)) continue
      for (const pod of pods.filter((p) => p.metadata.namespace === NS && p.metadata.name.startsWith(`${owner}-pod-`))) {
        const gone = await fetch(`${real.fake.url}/api/v1/namespaces/${NS}/pods/${pod.metadata.name}`, { method: 'DELETE' })
        expect(gone.status).toBe(200)
      }
    }
  }
}

// --- Invariants ---

interface RevisionRow {
  serve: string
  id: number
  revision: number
  status: string
  reason: string
  artifact_version: string
  rolled_back_from: number | null
  rolled_back_to: number | null
  deployment_config: unknown
  infra_snapshot: unknown
  applied: number
  removed: number
  manifests_yaml: string
}

interface CanaryRow {
  serve: string
  revision: number
  phase: string
  step_index: number
  weight: number
  canary_replicas: number
  healthy: number
  stable: number
}

const json = (value: unknown) => (typeof value === 'string' ? JSON.parse(value) : value) as Record<string, any>

/** The cluster's objects of a serve (not the pods), reduced to what a revision decides. */
function clusterView(fake: FakeKubernetes, serve: string) {
  const view: Record<string, unknown> = {}
  for (const object of fake.list().filter((o) => o.kind !== 'Pod' && o.metadata.labels?.['darwin.ml-serve/serve'] === serve)) {
    if (object.kind === 'Deployment' && object.metadata.name === canaryName(serve)) {
      view.CanaryDeployment = { ...(describeObject(object) as object), replicas: (object.spec as any).replicas }
      continue
    }
    expect(object.metadata.name).toBe(stableName(serve))
    view[object.kind] = describeObject(object)
  }
  return view
}

function describeObject(object: StoredObject): unknown {
  const spec = object.spec as any
  switch (object.kind) {
    case 'Deployment': {
      const template = spec.template
      const container = template.spec.containers[0]
      return { image: container.image, cpu: String(container.resources.requests.cpu), revision: template.metadata.annotations['darwin.ml-serve/revision'] }
    }
    case 'HorizontalPodAutoscaler':
      return { min: spec.minReplicas, max: spec.maxReplicas }
    default:
      return { version: object.metadata.labels?.['app.kubernetes.io/version'] }
  }
}

function expectedView(serve: string, cluster: ServeModel['cluster']) {
  const view: Record<string, unknown> = {}
  const deployment = (c: Content) => ({ image: `registry.example.com/${serve}:${c.artifact}`, cpu: String(c.cfg.cores), revision: String(c.renderNo) })
  for (const kind of KINDS) {
    const c = cluster[kind]
    if (!c) continue
    if (kind === 'Deployment') view[kind] = deployment(c)
    else if (kind === 'HorizontalPodAutoscaler') view[kind] = { min: c.cfg.min, max: c.cfg.max }
    else view[kind] = { version: c.artifact }
  }
  if (cluster.CanaryDeployment) view.CanaryDeployment = { ...deployment(cluster.CanaryDeployment), replicas: cluster.CanaryDeployment.replicas }
  return view
}

/** The tracker's decisions that make an audit entry of its own: automatic rollbacks, removals, canary steps and rollbacks. */
const TRACKER_DECISIONS = new Set(['removed', 'canary-step', 'canary-promoted', 'canary-rolled-back'].map((kind) => `${kind} by ${TRACKER}`))

/** Checks (a)–(d) on every serve of the run, after a command. `touched`: the serve it acted on (also read through the API). */
export async function checkInvariants(m: Model, real: Real, touched?: number) {
  const names = m.serves.map((s) => s.name)
  const rows = await real.query<RevisionRow>(
    `select s.name serve, d.id, d.revision, d.status, d.reason, d.artifact_version, d.rolled_back_from, d.rolled_back_to, d.deployment_config,
            d.infra_snapshot, d.applied_at is not null applied, d.removed_at is not null removed, d.manifests_yaml
       from deployments d join serves s on s.id = d.serve_id where s.name in (?) order by s.name, d.revision`,
    [names],
  )
  const events = await real.query<{ serve: string; revision: number; kind: string; actor: string }>(
    `select s.name serve, d.revision, e.kind, e.actor
       from deployment_events e join deployments d on d.id = e.deployment_id join serves s on s.id = d.serve_id
      where s.name in (?) order by e.id`,
    [names],
  )
  const trackerAudits = await real.query<{ serve: string; entries: number }>(
    "select resource_name serve, count(*) entries from audit_log where actor_name = 'rollout-tracker' and resource_type = 'serve' and resource_name in (?) group by resource_name",
    [names],
  )
  const locks = await real.query<{ serve: string; deployment_id: number | null; operation: string }>(
    'select s.name serve, l.deployment_id, l.operation from change_locks l join serves s on s.id = l.serve_id where s.name in (?)',
    [names],
  )
  const canaries = await real.query<CanaryRow>(
    `select s.name serve, d.revision, c.phase, c.step_index, c.weight, c.canary_replicas, c.healthy_since is not null healthy, sd.revision stable
       from canary_rollouts c join deployments d on d.id = c.deployment_id join serves s on s.id = d.serve_id
       join deployments sd on sd.id = c.stable_deployment_id
      where s.name in (?) order by s.name, d.revision`,
    [names],
  )
  for (const [i, s] of m.serves.entries()) {
    const mine = rows.filter((row) => row.serve === s.name)
    // (d) The revisions table is the model's: every 2xx recorded as expected, every refusal recorded nothing.
    const actual = mine.map((row) => {
      const snapshot = json(row.infra_snapshot)
      const config = json(row.deployment_config)
      return {
        n: row.revision,
        status: row.status,
        reason: row.reason,
        artifact: row.artifact_version,
        rolledBackFrom: row.rolled_back_from,
        rolledBackTo: row.rolled_back_to,
        autoRollback: (config as { auto_rollback?: boolean }).auto_rollback ?? null,
        ...strategyOf(config),
        cfg: showCfg({ cores: snapshot.cores as number, min: snapshot.min_replicas as number, max: snapshot.max_replicas as number }),
        applied: Boolean(row.applied),
        removed: Boolean(row.removed),
      }
    })
    const expected = s.revs.map((r) => ({
      n: r.n,
      status: r.status,
      reason: r.reason,
      artifact: r.artifact,
      rolledBackFrom: r.rolledBackFrom,
      rolledBackTo: r.rolledBackTo,
      autoRollback: r.autoRollback ?? null,
      ...expectedStrategy(r),
      cfg: showCfg(r.cfg),
      applied: r.applied,
      removed: r.removed,
    }))
    expect({ serve: s.name, revisions: actual }).toEqual({ serve: s.name, revisions: expected })
    // The events of each revision, by whom: the canary's (started, steps, promoted, aborted, rolled
    // back) and the tracker's decisions; and an audit entry of the tracker's own for each automatic
    // rollback, each removal of a failed first rollout, each canary step it took and each canary it rolled back.
    const eventsOf = (n: number) => events.filter((e) => e.serve === s.name && e.revision === n).map((e) => `${e.kind} by ${e.actor}`)
    expect({ serve: s.name, events: s.revs.map((r) => ({ n: r.n, events: eventsOf(r.n) })) }).toEqual({
      serve: s.name,
      events: s.revs.map((r) => ({ n: r.n, events: r.events })),
    })
    const decisions = s.revs.filter((r) => r.reason === 'auto-rollback').length + s.revs.flatMap((r) => r.events).filter((e) => TRACKER_DECISIONS.has(e)).length
    expect({ serve: s.name, trackerAudits: Number(trackerAudits.find((row) => row.serve === s.name)?.entries ?? 0) }).toEqual({ serve: s.name, trackerAudits: decisions })

    // (c) One rollout at a time; a lock exactly while one is in flight, held by it (a canary stepping too).
    const flying = mine.filter((row) => row.status === 'pending' || row.status === 'deploying')
    expect(flying.length).toBeLessThanOrEqual(1)
    expect(mine.filter((row) => row.status === 'active').length).toBeLessThanOrEqual(1)
    const held = locks.filter((lock) => lock.serve === s.name)
    expect({ serve: s.name, locks: held.map((lock) => lock.deployment_id) }).toEqual({ serve: s.name, locks: flying.map((row) => row.id) })
    const canary = stepping(s)
    if (canary) expect({ serve: s.name, lockedBy: mine.find((row) => row.id === held[0]?.deployment_id)?.revision }).toEqual({ serve: s.name, lockedBy: canary.n })
    // … and every canary's progress is the model's.
    expect({
      serve: s.name,
      canaries: canaries
        .filter((row) => row.serve === s.name)
        .map((row) => ({ n: row.revision, phase: row.phase, step: row.step_index, weight: row.weight, replicas: row.canary_replicas, healthy: Boolean(row.healthy), stable: row.stable })),
    }).toEqual({
      serve: s.name,
      canaries: s.revs.filter((r) => r.canary).map((r) => ({ n: r.n, ...(r.canary as Canary) })),
    })

    // (a) The cluster, object by object, is what the model says …
    expect({ serve: s.name, cluster: clusterView(real.fake, s.name) }).toEqual({ serve: s.name, cluster: expectedView(s.name, s.cluster) })
    // … and that is the render of the revision it stands for, unless a 502 left a partial one; while a
    // canary steps, its Deployment is its render and the stable objects stand for what they stood for.
    const state = stateOf(s)
    if (state === 'empty') expect(s.cluster).toEqual({})
    const target = intended(s)
    const stable = intended(s, true)
    if (!s.dirty) {
      const last = s.lastApplied === null ? undefined : rev(s, s.lastApplied)
      if (last) for (const kind of KINDS) expect(s.cluster[kind]).toEqual(contentOf(last))
      else for (const kind of KINDS) expect({ serve: s.name, kind, content: s.cluster[kind] ?? null }).toEqual({ serve: s.name, kind, content: null })
      if (stable) expect({ serve: s.name, clusterHolds: last?.n ?? null }).toEqual({ serve: s.name, clusterHolds: stable.n })
      expect({ serve: s.name, canaryDeployment: s.cluster.CanaryDeployment ?? null }).toEqual({
        serve: s.name,
        canaryDeployment: canary ? { ...contentOf(canary), replicas: (canary.canary as Canary).replicas } : null,
      })
    }
    // A canary steps beside the active revision (nothing can change it meanwhile).
    if (canary) expect({ serve: s.name, canaryBeside: (canary.canary as Canary).stable }).toEqual({ serve: s.name, canaryBeside: active(s)?.n as number })
    // The cluster stands for a revision neither in flight nor active only after a rollout that failed
    // without rolling back (see intended()).
    for (const t of [target, stable]) if (t && t !== inFlight(s) && t !== active(s)) expectFailedWithoutRollback(s, t)
    // A revision rolled back automatically names the auto-rollback revision, which restores the active
    // one; a canary aborted or rolled back names the stable revision it ran beside.
    for (const r of s.revs.filter((r) => r.rolledBackTo !== null)) {
      if (r.canaryEnd) {
        const c = r.canary as Canary
        expect({ serve: s.name, canary: r.n, status: r.status, rolledBackTo: r.rolledBackTo, before: (r.rolledBackTo as number) < r.n, phase: c.phase }).toEqual({
          serve: s.name,
          canary: r.n,
          status: r.canaryEnd === 'aborted' ? 'cancelled' : 'failed',
          rolledBackTo: c.stable,
          before: true,
          phase: r.canaryEnd === 'aborted' ? 'aborted' : 'rolled-back',
        })
        continue
      }
      const back = rev(s, r.rolledBackTo as number)
      expect({ serve: s.name, failed: r.n, status: r.status, rollsBack: rollsBack(r), by: back.reason, after: back.n > r.n }).toEqual({
        serve: s.name,
        failed: r.n,
        status: 'failed',
        rollsBack: true,
        by: 'auto-rollback',
        after: true,
      })
    }
    // A rollback's (and an auto-rollback's) manifests are the restored revision's, byte for byte
    // (README "Rollback"; no scaling window here).
    for (const r of s.revs.filter((r) => r.rolledBackFrom !== null)) {
      const restored = mine.find((row) => row.revision === r.rolledBackFrom)
      const made = mine.find((row) => row.revision === r.n)
      expect(made?.manifests_yaml).toBeString()
      expect({ serve: s.name, rollback: r.n, manifests: made?.manifests_yaml }).toEqual({ serve: s.name, rollback: r.n, manifests: restored?.manifests_yaml })
    }

    // (b) The stored infra config is what runs (or rolls out, or steps as a canary).
    if (i === touched || touched === undefined) {
      const replica = real.replicas[i % real.replicas.length] as Replica
      const stored = await replica.request('GET', `/api/v1/serve/${s.name}/infra-config/${ENV}`)
      expect(stored.status).toBe(200)
      const c = stored.body.data.api_serve_infra_config
      expect({ serve: s.name, stored: showCfg({ cores: c.cores, min: c.min_replicas, max: c.max_replicas }) }).toEqual({ serve: s.name, stored: showCfg(s.stored) })
      const current = await replica.request('GET', `/api/v1/serve/${s.name}/deployment/${ENV}`)
      expect(current.status).toBe(200)
      const f = inFlight(s)
      const progress = f?.canary
      expect({ serve: s.name, active: current.body.data.active?.revision ?? null, inFlight: current.body.data.in_flight?.revision ?? null, canary: canaryView(current.body.data.canary) }).toEqual({
        serve: s.name,
        active: active(s)?.n ?? null,
        inFlight: f?.n ?? null,
        canary: progress ? { phase: progress.phase, step: progress.step + 1, weight: progress.weight, canary_replicas: progress.replicas, stable_revision: progress.stable } : null,
      })
      // A stepping canary's health, read live from its Deployment and pods.
      if (canary) {
        const health = canaryHealth(s)
        expect({ serve: s.name, healthy: current.body.data.canary.health?.healthy }).toEqual({ serve: s.name, healthy: !health.unhealthy && health.ready })
      }
    }
    if (target) expect({ serve: s.name, stored: showCfg(s.stored), of: target.n }).toEqual({ serve: s.name, stored: showCfg(target.cfg), of: target.n })
  }
}

// --- Commands ---

type Cmd = fc.AsyncCommand<Model, Real>

abstract class Base implements Cmd {
  /**
   * `preferring`: act on the first serve (from `serve` on) that is `active`, has a canary stepping, or
   * a (non-canary) rollout in flight, else on `serve` — resolved from the model when the command runs
   * (so that canaries, which need an active revision first, occur in most runs); `resolved`: the
   * serve it acted on last.
   */
  prefer?: 'active' | 'canary' | 'rolling out'
  resolved?: number
  constructor(
    readonly serve: number,
    readonly via: number,
  ) {}
  preferring(prefer: Base['prefer']): this {
    this.prefer = prefer
    return this
  }
  check() {
    return true
  }
  abstract label(m?: Model): string
  abstract act(m: Model, s: ServeModel, real: Real): Promise<void>
  async run(m: Model, real: Real) {
    real.stats.commands++
    await this.settle(m, real)
  }
  private serveToActOn(m: Model): number {
    if (!this.prefer) return this.serve
    for (let k = 0; k < m.serves.length; k++) {
      const i = (this.serve + k) % m.serves.length
      const s = m.serves[i] as ServeModel
      const state = stateOf(s)
      if (this.prefer === 'active' ? state === 'active' : this.prefer === 'canary' ? state === 'active+canary' : state === 'rolling-out' || state === 'active+rolling-out') return i
    }
    return this.serve
  }
  /** The command and the checks after it. */
  async settle(m: Model, real: Real) {
    const i = this.serveToActOn(m)
    this.resolved = i
    await this.act(m, m.serves[i] as ServeModel, real)
    await collectPods(m, real)
    await checkInvariants(m, real, i)
  }
  /** Which serve, for the labels. */
  get who(): string {
    if (!this.prefer) return `s${this.serve}`
    return `s${this.resolved ?? '?'} (${this.prefer === 'active' ? 'an active serve' : this.prefer === 'canary' ? 'a canary' : 'a rollout'}, else s${this.serve})`
  }
  toString() {
    return `${this.label()} @${'AB'[this.via]}`
  }
}

const faultText = (fault?: Fault) => (fault ? ` [${fault.on} ${fault.status}]` : '')

export class Deploy extends Base {
  constructor(
    serve: number,
    via: number,
    readonly artifact: Artifact,
    readonly fault?: Fault,
    /** Sent as api_serve_deployment_config.auto_rollback (undefined: left out, inherited). */
    readonly autoRollback?: boolean,
    /** Sent as deployment_strategy (with the canary's steps and CANARY_SETTINGS); undefined: left out, inherited. */
    readonly strategy?: StrategyChoice,
  ) {
    super(serve, via)
  }
  label() {
    const autoRollback = this.autoRollback === undefined ? '' : ` auto_rollback:${this.autoRollback}`
    const strategy = this.strategy === undefined ? '' : this.strategy === 'rolling' ? ' rolling' : ` canary ${JSON.stringify(this.strategy)}`
    return `${this.who} deploy ${this.artifact}${strategy}${autoRollback}${faultText(this.fault)}`
  }
  async act(m: Model, s: ServeModel, real: Real) {
    const expected = expectDeploy(m, s, this.artifact, this.autoRollback, this.fault, this.strategy)
    const strategy =
      this.strategy === undefined ? {} : this.strategy === 'rolling' ? { deployment_strategy: 'rolling' } : { deployment_strategy: 'canary', canary: { steps: this.strategy, ...CANARY_SETTINGS } }
    const config = { ...strategy, ...(this.autoRollback === undefined ? {} : { auto_rollback: this.autoRollback }) }
    const body = { env: ENV, artifact_version: this.artifact, ...(Object.keys(config).length > 0 ? { api_serve_deployment_config: config } : {}) }
    const canaryBefore = stepping(s)
    const answer = await send(real, this.via, this.fault, 'POST', `/api/v1/serve/${s.name}/deploy`, body)
    expectAnswer(real, this.strategy === undefined ? 'deploy' : `deploy (${this.strategy === 'rolling' ? 'rolling' : 'canary'})`, answer, expected)
    expected.commit?.()
    if (!canaryBefore && stepping(s)) count(real, 'canary started by a deploy')
  }
}

export class InfraPatch extends Base {
  constructor(
    serve: number,
    via: number,
    readonly fields: PatchFields | 'same',
    readonly fault?: Fault,
  ) {
    super(serve, via)
  }
  label() {
    return `${this.who} PATCH ${JSON.stringify(this.fields)}${faultText(this.fault)}`
  }
  async act(m: Model, s: ServeModel, real: Real) {
    // 'same': the stored values again, a PATCH that changes nothing.
    const fields = this.fields === 'same' ? { cores: s.stored.cores, max_replicas: s.stored.max } : this.fields
    const expected = expectInfraPatch(m, s, fields, this.fault)
    const canaryBefore = stepping(s)
    const answer = await send(real, this.via, this.fault, 'PATCH', `/api/v1/serve/${s.name}/infra-config/${ENV}`, { api_serve_infra_config: fields })
    expectAnswer(real, 'infra PATCH', answer, expected)
    expected.commit?.()
    if (!canaryBefore && stepping(s)) count(real, 'canary started by an infra PATCH')
  }
}

export class Rollback extends Base {
  constructor(
    serve: number,
    via: number,
    readonly target: RollbackTarget,
    readonly force: boolean,
    readonly fault?: Fault,
  ) {
    super(serve, via)
  }
  label() {
    const t = this.target
    const to = t.kind === 'default' ? 'default' : t.kind === 'missing' ? 'missing' : `${t.kind}#${t.pick}`
    return `${this.who} rollback ${to}${this.force ? ' force' : ''}${faultText(this.fault)}`
  }
  async act(m: Model, s: ServeModel, real: Real) {
    const revision = rollbackRevisionOf(s, this.target)
    const expected = expectRollback(m, s, revision, this.force, this.fault)
    const body = { env: ENV, ...(revision === undefined ? {} : { revision }), ...(this.force ? { force: true } : {}) }
    const answer = await send(real, this.via, this.fault, 'POST', `/api/v1/serve/${s.name}/rollback`, body)
    expectAnswer(real, 'rollback', answer, expected)
    expected.commit?.()
  }
}

export class Undeploy extends Base {
  constructor(
    serve: number,
    via: number,
    readonly originalPath: boolean,
    readonly fault?: Fault,
  ) {
    super(serve, via)
  }
  label() {
    return `${this.who} undeploy${this.originalPath ? ' (…/undeploy/{env})' : ''}${faultText(this.fault)}`
  }
  async act(m: Model, s: ServeModel, real: Real) {
    const expected = expectUndeploy(m, s, this.fault)
    const label = stepping(s) ? 'undeploy (a canary steps)' : 'undeploy'
    const answer = this.originalPath
      ? await send(real, this.via, this.fault, 'POST', `/api/v1/serve/${s.name}/undeploy/${ENV}`)
      : await send(real, this.via, this.fault, 'POST', `/api/v1/serve/${s.name}/undeploy`, { env: ENV })
    expectAnswer(real, label, answer, expected)
    expected.commit?.()
  }
}

/** How a promote's body asks for the next step (no body, `{}`, `{"full": false}`) or the full promotion. */
export type PromoteBody = 'none' | 'empty' | 'step' | 'full'

/** POST …/deployment/prod/promote: the canary's next step, or all the way. */
export class Promote extends Base {
  constructor(
    serve: number,
    via: number,
    readonly body: PromoteBody,
    readonly fault?: Fault,
  ) {
    super(serve, via)
  }
  label() {
    const body = { none: '', empty: ' {}', step: ' {"full":false}', full: ' {"full":true}' }[this.body]
    return `${this.who} promote${body}${faultText(this.fault)}`
  }
  async act(m: Model, s: ServeModel, real: Real) {
    const full = this.body === 'full'
    const expected = expectPromote(m, s, full, this.fault)
    const body = { none: undefined, empty: {}, step: { full: false }, full: { full: true } }[this.body]
    const answer = await send(real, this.via, this.fault, 'POST', `/api/v1/serve/${s.name}/deployment/${ENV}/promote`, body)
    expectAnswer(real, full ? 'promote (full)' : 'promote', answer, expected)
    expected.commit?.()
  }
}

/** POST …/deployment/prod/abort: back to the stable revision. */
export class Abort extends Base {
  constructor(
    serve: number,
    via: number,
    readonly fault?: Fault,
  ) {
    super(serve, via)
  }
  label() {
    return `${this.who} abort${faultText(this.fault)}`
  }
  async act(m: Model, s: ServeModel, real: Real) {
    const expected = expectAbort(m, s, this.fault)
    const answer = await send(real, this.via, this.fault, 'POST', `/api/v1/serve/${s.name}/deployment/${ENV}/abort`)
    expectAnswer(real, 'abort', answer, expected)
    expected.commit?.()
  }
}

/** What a Deployment controller reports: the rollout of the current spec is complete, failed, or under way (1 pod). */
function reportRollout(fake: FakeKubernetes, s: ServeModel, how: 'done' | 'failed' | 'progressing') {
  const deployment = fake.get('Deployment', NS, stableName(s.name))
  if (!deployment) return
  const observedGeneration = Number(deployment.metadata.generation)
  const status =
    how === 'done'
      ? { observedGeneration, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 }
      : how === 'failed'
        ? { observedGeneration, replicas: 1, updatedReplicas: 0, readyReplicas: 0, availableReplicas: 0, conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }] }
        : { observedGeneration, replicas: 1, updatedReplicas: 0, readyReplicas: 0, availableReplicas: 0, conditions: [{ type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated' }] }
  fake.setStatus('Deployment', NS, stableName(s.name), status)
  s.stableReplicas = 1
}

/** How the canary's pods run: all ready; ready but restarted; crash-looping (with or without restarts). */
export type CanaryPodsRun = 'ready' | 'restarts' | 'crash' | 'crash+restarts'
const PODS: Record<CanaryPodsRun, { ready?: number; restarts?: number; waiting?: string }> = {
  ready: {},
  restarts: { restarts: 3 },
  crash: { ready: 0, waiting: 'CrashLoopBackOff' },
  'crash+restarts': { ready: 0, restarts: 3, waiting: 'CrashLoopBackOff' },
}

/** The canary Deployment runs its spec's replicas as pods, as `how` says (its status to match). */
function runCanaryPods(fake: FakeKubernetes, s: ServeModel, how: CanaryPodsRun) {
  const deployment = s.cluster.CanaryDeployment as CanaryContent
  const pods = PODS[how]
  fake.runPods(NS, canaryName(s.name), pods)
  s.canaryPods = { ready: Math.min(deployment.replicas, pods.ready ?? deployment.replicas), unhealthy: how !== 'ready' }
}

/** Which trackers tick: one, one after the other, or both at once. */
export type Ticks = 'A' | 'B' | 'A then B' | 'A and B at once'

async function tick(real: Real, ticks: Ticks) {
  const [a, b] = real.replicas as [Replica, Replica]
  if (ticks === 'A') await a.tick()
  else if (ticks === 'B') await b.tick()
  else if (ticks === 'A then B') {
    await a.tick()
    await b.tick()
  } else await Promise.all([a.tick(), b.tick()])
}

/**
 * The canaries stepping before a round of ticks, after it: one tick each, two in a row, or — both
 * trackers at once — one or two (each move is a conditional update, so a tracker that read the canary
 * before the other moved it changes nothing; one that read it after takes the next move). Which of
 * the two it was is read from the database; everything else is then checked as usual.
 */
async function canaryRound(m: Model, real: Real, serves: { s: ServeModel; cause: string; stableComplete: boolean }[], ticks: Ticks) {
  for (const { s, cause, stableComplete } of serves) {
    const n = (stepping(s) as Rev).n
    if (ticks === 'A' || ticks === 'B') {
      count(real, `canary tick [${cause}] → ${canaryTick(m, s).outcome}`)
      continue
    }
    const once = structuredClone(s)
    const first = canaryTick(m, once)
    const twice = structuredClone(once)
    const second = secondTick(m, twice, n, first.promotedSameSpec, stableComplete)
    let chosen = twice
    if (ticks === 'A and B at once') {
      const [row] = await real.query<{ status: string; phase: string; step_index: number; weight: number; canary_replicas: number; healthy: number }>(
        `select d.status, c.phase, c.step_index, c.weight, c.canary_replicas, c.healthy_since is not null healthy
           from deployments d join serves s on s.id = d.serve_id join canary_rollouts c on c.deployment_id = d.id where s.name = ? and d.revision = ?`,
        [s.name, n],
      )
      const seen = row && { status: row.status, phase: row.phase, step: row.step_index, weight: row.weight, replicas: row.canary_replicas, healthy: Boolean(row.healthy) }
      const of = (x: ServeModel) => {
        const r = rev(x, n)
        const c = r.canary as Canary
        return { status: r.status, phase: c.phase, step: c.step, weight: c.weight, replicas: c.replicas, healthy: c.healthy }
      }
      // Both the same, or the database says one tick: one tick (else the checks report the difference).
      chosen = JSON.stringify(of(twice)) === JSON.stringify(seen) && JSON.stringify(of(once)) !== JSON.stringify(seen) ? twice : once
    }
    Object.assign(s, chosen)
    count(real, `canary ${ticks === 'A then B' ? 'two ticks' : 'both trackers at once'} [${cause}] → ${first.outcome}${chosen === twice ? `, then ${second}` : ''}`)
  }
}

/** The Deployment of one serve reports its rollout's end (a canary's pods, for a canary); the tracker of one instance (or both at once) ticks. */
export class RolloutEnds extends Base {
  constructor(
    serve: number,
    via: number,
    readonly how: 'done' | 'failed',
    readonly bothReplicas: boolean,
  ) {
    super(serve, via)
  }
  label() {
    return `${this.who} rollout ${this.how === 'done' ? 'completes' : 'fails (ProgressDeadlineExceeded)'}${this.bothReplicas ? ', both trackers tick' : ''}`
  }
  async act(m: Model, s: ServeModel, real: Real) {
    const canary = stepping(s)
    // For a canary, "the rollout" is its step: its pods are all ready, or crash-looping.
    const expected = canary ? {} : expectRolloutEnd(m, s, this.how)
    // The other serves' rollouts are under way: the tick (which follows every rollout) leaves them be
    // (their canaries, if any, are ticked as their pods are).
    for (const other of m.serves) reportRollout(real.fake, other, other === s && !canary ? this.how : 'progressing')
    if (canary && s.cluster.CanaryDeployment) runCanaryPods(real.fake, s, this.how === 'done' ? 'ready' : 'crash+restarts')
    const round = m.serves.filter((x) => stepping(x)).map((x) => ({ s: x, cause: x === s ? `rollout ${this.how}` : "another serve's rollout ticks", stableComplete: false }))
    const ticks: Ticks = this.bothReplicas ? 'A and B at once' : this.via === 0 ? 'A' : 'B'
    await tick(real, ticks)
    if (!canary) count(real, `rollout ${this.how}${this.bothReplicas ? ' (both trackers)' : ''} → ${expected.outcome ?? 'nothing to end'}`)
    expected.commit?.()
    if (this.bothReplicas && expected.sameSpec) {
      // The auto-rollback re-applied the very spec that failed: the Deployment's generation did not move
      // and it still reports ProgressDeadlineExceeded, so the other tracker, ticking meanwhile, may have
      // judged the auto-rollback failed in the same round (it then just fails: no rollback of a rollback).
      const back = inFlight(s) as Rev
      const [row] = await real.query<{ status: string }>('select d.status from deployments d join serves s on s.id = d.serve_id where s.name = ? and d.revision = ?', [s.name, back.n])
      if (row?.status === 'failed') {
        const again = expectRolloutEnd(m, s, 'failed')
        count(real, `rollout failed (both trackers) → its auto-rollback (the same spec) ${again.outcome}`)
        again.commit?.()
      }
    }
    await canaryRound(m, real, round, ticks)
  }
}

/**
 * The canary's pods run as `pods` says, the stable Deployment runs `stablePods` pods (complete), and
 * the trackers tick as `ticks` says. Without a stepping canary (or its Deployment) nothing runs: the
 * serve's rollout, if any, is under way, and the tick leaves it be.
 */
export class CanaryTick extends Base {
  constructor(
    serve: number,
    via: number,
    readonly pods: CanaryPodsRun,
    readonly stablePods: number,
    readonly ticks: Ticks,
  ) {
    super(serve, via)
  }
  label() {
    return `${this.who} canary pods ${this.pods}, stable ${this.stablePods} pods; tick ${this.ticks}`
  }
  override toString() {
    return this.label()
  }
  async act(m: Model, s: ServeModel, real: Real) {
    const runs = Boolean(stepping(s) && s.cluster.CanaryDeployment && s.cluster.Deployment)
    for (const other of m.serves) if (other !== s || !runs) reportRollout(real.fake, other, 'progressing')
    if (runs) {
      runCanaryPods(real.fake, s, this.pods)
      real.fake.runPods(NS, stableName(s.name), { count: this.stablePods })
      s.stableReplicas = this.stablePods
    }
    const cause = runs ? (this.pods === 'ready' ? 'pods ready' : `pods unhealthy (${this.pods})`) : 'its Deployment is gone'
    const round = m.serves.filter((x) => stepping(x)).map((x) => ({ s: x, cause: x === s ? cause : "another serve's canary ticks", stableComplete: x === s && runs }))
    count(real, `canary ${this.pods === 'ready' ? 'healthy' : 'unhealthy'} tick command${runs ? '' : stepping(s) ? ' (its Deployment is gone)' : ' (no canary steps here)'}`)
    await tick(real, this.ticks)
    await canaryRound(m, real, round, this.ticks)
  }
}

/** Two deploys of one serve at once, one through each instance: one starts, the other is refused. */
class RaceDeploy extends Base {
  constructor(
    serve: number,
    readonly artifact: Artifact,
  ) {
    super(serve, 0)
  }
  label() {
    return `${this.who} deploy ${this.artifact} on A and B at once`
  }
  override toString() {
    return this.label()
  }
  async act(m: Model, s: ServeModel, real: Real) {
    real.fake.clearRequests()
    const send = (replica: Replica) => replica.request('POST', `/api/v1/serve/${s.name}/deploy`, { env: ENV, artifact_version: this.artifact })
    const answers = await Promise.all(real.replicas.map(send))
    const statuses = answers.map((answer) => answer.status).sort()
    count(real, `race deploy → ${statuses.join('+')}`)
    const expected = expectDeploy(m, s, this.artifact, undefined)
    if (expected.status === 409) {
      expect(answers.map((answer) => [answer.status, answer.body?.code])).toEqual([
        [409, 'CHANGE_IN_PROGRESS'],
        [409, 'CHANGE_IN_PROGRESS'],
      ])
      return
    }
    // One change at a time across replicas: exactly one starts.
    expect(statuses).toEqual([STARTED, 409])
    const winner = answers.find((answer) => answer.status === STARTED) as TestResponse
    const loser = answers.find((answer) => answer.status === 409) as TestResponse
    expect(loser.body.code).toBe('CHANGE_IN_PROGRESS')
    expected.body?.(winner.body)
    expected.commit?.()
  }
}

// --- Generators ---

const serveArb = fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.constant(1), weight: 1 })
const viaArb = fc.constantFrom(0, 1)
const artifactArb = fc.constantFrom<Artifact>('v1', 'v2')
const statusArb = fc.constantFrom<500 | 503>(500, 503)
/** A fault armed for one command in four. */
const faultArb = (on: Fault['on'][]) =>
  fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 3 },
    { arbitrary: fc.record({ on: fc.constantFrom(...on), status: statusArb }), weight: 1 },
  )
const applyFaultArb = faultArb(['apply', 'apply-partial'])
const deleteFaultArb = faultArb(['delete', 'delete-partial'])
const patchArb = fc.oneof(
  { arbitrary: fc.constant<'same'>('same'), weight: 1 },
  {
    arbitrary: fc
      .record(
        { cores: fc.integer({ min: 1, max: 3 }), min_replicas: fc.integer({ min: 1, max: 3 }), max_replicas: fc.integer({ min: 1, max: 4 }) },
        { requiredKeys: [] },
      )
      .filter((fields) => Object.keys(fields).length > 0),
    weight: 4,
  },
)
const rollbackTargetArb = fc.oneof(
  { arbitrary: fc.constant<RollbackTarget>({ kind: 'default' }), weight: 3 },
  { arbitrary: fc.nat(20).map((pick): RollbackTarget => ({ kind: 'any', pick })), weight: 3 },
  { arbitrary: fc.nat(20).map((pick): RollbackTarget => ({ kind: 'failed', pick })), weight: 2 },
  { arbitrary: fc.constant<RollbackTarget>({ kind: 'missing' }), weight: 1 },
)
const stepsArb = fc.constantFrom<number[]>([50, 100], [10, 50, 100], [30, 60, 100])
const ticksArb = fc.constantFrom<Ticks>('A', 'B', 'A then B', 'A and B at once')
const onCanaryArb = fc.oneof({ arbitrary: fc.constant<'canary'>('canary'), weight: 3 }, { arbitrary: fc.constant(undefined), weight: 1 })
const promoteBodyArb = fc.oneof(
  { arbitrary: fc.constantFrom<PromoteBody>('none', 'empty', 'step'), weight: 2 },
  { arbitrary: fc.constant<PromoteBody>('full'), weight: 1 },
)

export const commandArbs: fc.Arbitrary<Cmd>[] = [
  fc.tuple(serveArb, viaArb, artifactArb, applyFaultArb).map(([serve, via, artifact, fault]) => new Deploy(serve, via, artifact, fault)),
  fc.tuple(serveArb, viaArb, artifactArb).map(([serve, via, artifact]) => new Deploy(serve, via, artifact)),
  // A deploy that says whether a failed rollout rolls back by itself (the others inherit the active revision's).
  fc.tuple(serveArb, viaArb, artifactArb, fc.boolean(), applyFaultArb).map(([serve, via, artifact, autoRollback, fault]) => new Deploy(serve, via, artifact, fault, autoRollback)),
  // Canaries: a deploy with the canary strategy (three times as likely, and three in four on a serve
  // that is active if one is: a canary needs an active revision to run beside), or back to rolling.
  ...[1, 2, 3].map(() =>
    fc
      .tuple(serveArb, viaArb, artifactArb, stepsArb, fc.option(fc.boolean(), { nil: undefined }), applyFaultArb, fc.nat(3))
      .map(([serve, via, artifact, steps, autoRollback, fault, where]) => new Deploy(serve, via, artifact, fault, autoRollback, steps).preferring(where > 0 ? 'active' : undefined)),
  ),
  fc.tuple(serveArb, viaArb, artifactArb).map(([serve, via, artifact]) => new Deploy(serve, via, artifact, undefined, undefined, 'rolling')),
  fc.tuple(serveArb, viaArb, patchArb, applyFaultArb).map(([serve, via, fields, fault]) => new InfraPatch(serve, via, fields, fault)),
  fc.tuple(serveArb, viaArb, rollbackTargetArb, fc.boolean(), applyFaultArb).map(([serve, via, target, force, fault]) => new Rollback(serve, via, target, force, fault)),
  fc
    .tuple(serveArb, viaArb, fc.oneof(fc.constant<RollbackTarget>({ kind: 'default' }), fc.nat(20).map((pick): RollbackTarget => ({ kind: 'any', pick }))))
    .map(([serve, via, target]) => new Rollback(serve, via, target, false)),
  fc.tuple(serveArb, viaArb, fc.boolean(), deleteFaultArb).map(([serve, via, originalPath, fault]) => new Undeploy(serve, via, originalPath, fault)),
  fc.tuple(serveArb, viaArb, fc.boolean()).map(([serve, via, both]) => new RolloutEnds(serve, via, 'done', both)),
  fc.tuple(serveArb, viaArb).map(([serve, via]) => new RolloutEnds(serve, via, 'done', false)),
  // … and on a serve with a rollout in flight, if one has: an active revision for a canary to run beside.
  ...[1, 2].map(() => fc.tuple(serveArb, viaArb).map(([serve, via]) => new RolloutEnds(serve, via, 'done', false).preferring('rolling out'))),
  fc.tuple(serveArb, viaArb).map(([serve, via]) => new RolloutEnds(serve, via, 'failed', false)),
  // Both trackers see the same failure: one rolls back (or removes), the other finds it ended.
  fc.tuple(serveArb, viaArb).map(([serve, via]) => new RolloutEnds(serve, via, 'failed', true)),
  fc.tuple(serveArb, artifactArb).map(([serve, artifact]) => new RaceDeploy(serve, artifact)),
  // A canary's commands — promote, abort, and ticks with its pods healthy (twice as likely) or not —
  // three times in four on a serve whose canary steps, if one does.
  fc.tuple(serveArb, viaArb, promoteBodyArb, applyFaultArb, onCanaryArb).map(([serve, via, body, fault, prefer]) => new Promote(serve, via, body, fault).preferring(prefer)),
  fc.tuple(serveArb, viaArb, deleteFaultArb, onCanaryArb).map(([serve, via, fault, prefer]) => new Abort(serve, via, fault).preferring(prefer)),
  ...[1, 2].map(() =>
    fc
      .tuple(serveArb, viaArb, fc.integer({ min: 1, max: 3 }), ticksArb, onCanaryArb)
      .map(([serve, via, stablePods, ticks, prefer]) => new CanaryTick(serve, via, 'ready', stablePods, ticks).preferring(prefer)),
  ),
  fc
    .tuple(serveArb, viaArb, fc.constantFrom<CanaryPodsRun>('restarts', 'crash', 'crash+restarts'), fc.integer({ min: 1, max: 3 }), ticksArb, onCanaryArb)
    .map(([serve, via, pods, stablePods, ticks, prefer]) => new CanaryTick(serve, via, pods, stablePods, ticks).preferring(prefer)),
]

/**
 * How a run begins: with both serves empty; or with serve 0's first deploy (rolling, or with the
 * canary strategy, which its next deploys inherit) rolled out; or with a canary of serve 0 already
 * stepping beside that — so that canaries, which need an active revision, occur in most runs. Through
 * the same commands and checks as the sequence.
 */
export type WarmUp = 'none' | 'active' | 'active (canary strategy)' | 'a canary stepping'
export const warmUpArb = fc.oneof(
  { arbitrary: fc.constantFrom<WarmUp>('none', 'active', 'active (canary strategy)'), weight: 3 },
  { arbitrary: fc.constant<WarmUp>('a canary stepping'), weight: 2 },
)

export async function warmUp(m: Model, real: Real, how: WarmUp) {
  count(real, `runs beginning ${how === 'none' ? 'empty' : `with serve 0: ${how}`}`)
  if (how === 'none') return
  await new Deploy(0, 0, 'v1', undefined, undefined, how === 'active' ? undefined : [10, 50, 100]).settle(m, real)
  await new RolloutEnds(0, 1, 'done', false).settle(m, real)
  if (how === 'a canary stepping') await new Deploy(0, 1, 'v2').settle(m, real)
}

/**
 * Quiescence: every canary still stepping ends (promoted all the way, or aborted), every rollout that
 * can complete does; then (a)–(d) once more.
 */
export async function quiesce(m: Model, real: Real) {
  if (m.serves.some((s) => s.revs.some((r) => r.canary))) count(real, 'runs in which a canary started')
  for (const [i, s] of m.serves.entries()) {
    const canary = stepping(s)
    if (canary) await (canary.n % 2 === 0 ? new Promote(i, i % real.replicas.length, 'full') : new Abort(i, i % real.replicas.length)).settle(m, real)
  }
  for (const [i, s] of m.serves.entries()) {
    if (inFlight(s) && s.cluster.Deployment) await new RolloutEnds(i, i % real.replicas.length, 'done', false).settle(m, real)
  }
  await checkInvariants(m, real)
  for (const s of m.serves) {
    // (b) once quiescent: the stored config is the active revision's infra_snapshot (but see intended()).
    const a = active(s)
    const target = intended(s)
    if (a && !inFlight(s) && target) {
      expect({ serve: s.name, stored: showCfg(s.stored) }).toEqual({ serve: s.name, stored: showCfg(target.cfg) })
      if (target !== a) expectFailedWithoutRollback(s, target)
    }
  }
}
