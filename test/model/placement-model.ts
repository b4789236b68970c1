/**
 * A model of the placement state machine (README "Deployments", src/modules/placement/transitions.ts)
 * and the fast-check commands that drive the real service against it. The real system is two app
 * instances (two pools, two sets of workers) on one database and ONE fake Kubernetes API; each
 * command says which instance it goes through.
 *
 * The model decides from the README's own transition table (parsed below, not imported from the
 * code it checks) and keeps, per serve: every revision (number, reason, artifact, infra config,
 * deployment config's `auto_rollback`, status, whether it was applied / removed, `rolled_back_from` /
 * `rolled_back_to`, the tracker's events about it), the stored infra config, and what each of our four
 * objects in the cluster was rendered from.
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
 * After every command the real system is compared with the model:
 *
 * (a) the cluster holds, object by object, what the model says; and, unless a 502 left a partial
 *     render (see `dirty`), exactly the render of the last revision applied — the one in flight, else
 *     the active one (but after a rollout that failed beside it and did not roll back, the failed
 *     one's: see `intended`) — or none of ours after an undeploy or a `fail+remove`;
 * (b) the stored infra config (GET …/infra-config/{env}) is that of the same revision: the one in
 *     flight, else (once quiescent) the active revision's infra_snapshot, with the same exception;
 * (c) at most one revision `pending`/`deploying` and one `active` per (serve, env); a `change_locks`
 *     row exactly when a revision is in flight, held by that revision;
 * (d) every answer has the status class and code the table gives; a 2xx is reflected (its revision
 *     exists with the expected reason, number, inputs, auto_rollback); a 4xx/5xx changed nothing —
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

// --- The README's table ---

/** `active+canary` is in the table but never reached here: canaries are not modelled. */
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
/** What the tracker records about a revision (deployment_events.kind; the canary's kinds are not reached). */
type EventKind = 'rollout-failed' | 'auto-rollback' | 'removed'

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
  /** Failed and rolled back automatically: the `auto-rollback` revision that serves in its place. */
  rolledBackTo: number | null
  /** The tracker's events about it, oldest first (all by `rollout-tracker`). */
  events: EventKind[]
  status: Status
  /** applied_at set: some of its objects were written. */
  applied: boolean
  /** removed_at set: an undeploy removed them since. */
  removed: boolean
  /** How it failed: its apply answered 502, or its rollout failed. */
  failedBy?: 'apply' | 'rollout'
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

export interface ServeModel {
  name: string
  revs: Rev[]
  stored: Cfg
  /** Each of our objects in the cluster, by kind, and the revision it was rendered from. */
  cluster: Partial<Record<Kind, Content>>
  /**
   * A 502 wrote part of a render (an apply that failed after its first objects) or removed part of
   * one (an undeploy that failed after its first deletes). Apply and remove are not atomic, so until
   * the next successful apply or removal the cluster may mix revisions; the object-by-object check
   * still holds, only the "exactly the live revision's render" one is suspended.
   */
  dirty: boolean
  /** The revision whose render was last applied in full (null: none, or removed since). */
  lastApplied: number | null
}

export interface Model {
  table: Table
  serves: ServeModel[]
}

const active = (s: ServeModel) => s.revs.findLast((r) => r.status === 'active')
const inFlight = (s: ServeModel) => s.revs.findLast((r) => r.status === 'deploying')
const mayHoldObjects = (s: ServeModel) => s.revs.some((r) => r.applied && !r.removed)
export function stateOf(s: ServeModel): State {
  const a = active(s)
  const f = inFlight(s)
  return a ? (f ? 'active+rolling-out' : 'active') : f ? 'rolling-out' : mayHoldObjects(s) ? 'failed' : 'empty'
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
 */
function intended(s: ServeModel): Rev | undefined {
  const f = inFlight(s)
  if (f) return f
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

/**
 * Records a revision and applies it (`start` / `preempt`): what the answer and the model become,
 * given the fault armed for this apply.
 */
function startRevision(
  s: ServeModel,
  draft: Omit<Rev, 'n' | 'status' | 'applied' | 'removed' | 'rolledBackTo' | 'events'>,
  fault: Fault | undefined,
  success: number,
  storeInfra: boolean,
): Expectation & { n: number } {
  const n = s.revs.length + 1 // numbered per serve; one environment here
  const r: Rev = { ...draft, n, status: 'deploying', applied: true, removed: false, rolledBackTo: null, events: [] }
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
      for (const other of s.revs) if (other.status === 'deploying') other.status = 'cancelled' // the rollout it interrupted
      s.revs.push(r)
      for (const kind of KINDS) s.cluster[kind] = contentOf(r)
      s.dirty = false
      s.lastApplied = n
      if (storeInfra) s.stored = r.cfg
    },
  }
}

/** What a revision's answer says of its deployment config's auto_rollback (null: left out). */
const autoRollbackOf = (body: any) => body.data.api_serve_deployment_config?.auto_rollback ?? null

/** `autoRollback`: what the deploy sends (undefined: it leaves it out, and inherits the active revision's). */
export function expectDeploy(m: Model, s: ServeModel, artifact: Artifact, autoRollback: boolean | undefined, fault?: Fault): Expectation {
  const outcome = m.table[stateOf(s)].deploy
  if (outcome === 'refuse') return { status: 409, code: 'CHANGE_IN_PROGRESS' }
  if (outcome !== 'start') throw new Error(`model: deploy → ${outcome}?`)
  // Left out, it is the ACTIVE revision's (a deploy starts only where nothing is in flight anyway).
  const inherited = autoRollback ?? active(s)?.autoRollback
  const started = startRevision(s, { reason: 'deploy', artifact, cfg: s.stored, renderNo: s.revs.length + 1, rolledBackFrom: null, autoRollback: inherited }, fault, STARTED, false)
  return {
    ...started,
    body: (body) => {
      expect(body.data).toMatchObject({ revision: started.n, status: 'deploying', reason: 'deploy', artifact_version: artifact, rolled_back_from: null, rolled_back_to: null })
      expect({ revision: started.n, auto_rollback: autoRollbackOf(body) }).toEqual({ revision: started.n, auto_rollback: inherited ?? null })
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
  if (outcome !== 'start' && outcome !== 'preempt') throw new Error(`model: infra PATCH → ${outcome}?`)
  // The artifact of the rollout in flight, else of the active revision.
  const basis = (inFlight(s) ?? active(s)) as Rev
  // … and its deployment config (auto_rollback with it).
  const started = startRevision(
    s,
    { reason: 'infra-update', artifact: basis.artifact, cfg: next, renderNo: s.revs.length + 1, rolledBackFrom: null, autoRollback: basis.autoRollback },
    fault,
    200,
    true,
  )
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
  if (outcome !== 'start' && outcome !== 'preempt') throw new Error(`model: rollback → ${outcome}?`)
  const t = target
  // "rendered from the earlier revision's own inputs and number: its manifests come back byte for
  // byte" — and the stored infra config becomes the restored revision's.
  // Its deployment config (auto_rollback with it) is the target's too.
  const started = startRevision(s, { reason: 'rollback', artifact: t.artifact, cfg: t.cfg, renderNo: t.renderNo, rolledBackFrom: t.n, autoRollback: t.autoRollback }, fault, STARTED, true)
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
      expect({ revision: started.n, auto_rollback: autoRollbackOf(body) }).toEqual({ revision: started.n, auto_rollback: t.autoRollback ?? null })
    },
  }
}

export function expectUndeploy(m: Model, s: ServeModel, fault?: Fault): Expectation {
  const outcome = m.table[stateOf(s)].undeploy
  if (outcome === 'nothing') return { status: 200, noClusterCall: true, body: (body) => expect(body.data.undeployed_revision).toBeNull() }
  if (outcome !== 'remove' && outcome !== 'preempt+remove') throw new Error(`model: undeploy → ${outcome}?`)
  const present = KINDS.filter((kind) => s.cluster[kind])
  // Removal deletes kind by kind (Service, Deployment, HorizontalPodAutoscaler, Ingress): the fault
  // strikes the first DELETE, or the autoscaler's; a DELETE that is never sent cannot fail.
  const failsAt = fault?.on === 'delete' ? present[0] : fault?.on === 'delete-partial' ? present.find((kind) => kind === 'HorizontalPodAutoscaler') : undefined
  if (failsAt) {
    return {
      status: 502,
      code: 'CLUSTER_FAILED',
      commit: () => {
        const deleted = present.slice(0, present.indexOf(failsAt))
        for (const kind of deleted) delete s.cluster[kind]
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
        if (r.status === 'deploying') r.status = 'cancelled'
        if (r.applied) r.removed = true
      }
      s.cluster = {}
      s.dirty = false
      s.lastApplied = null
    },
  }
}

/**
 * The tracker's tick once the Deployment reports the rollout complete (or failed). `outcome`: the
 * table's outcome it follows (for the run's statistics). No fault is ever armed for a tick, so an
 * automatic rollback's apply and a removal succeed.
 */
export function expectRolloutEnd(m: Model, s: ServeModel, how: 'done' | 'failed'): { commit?: () => void; outcome?: string; sameSpec?: boolean } {
  const r = inFlight(s)
  const command: TableCommand = how === 'done' ? 'rollout done' : r && !rollsBack(r) ? 'rollout failed, no auto-rollback' : 'rollout failed'
  const outcome = m.table[stateOf(s)][command]
  // Nothing rolls out, or its Deployment is gone (a partial removal): the tick changes nothing.
  if (outcome === '—' || !r || !s.cluster.Deployment) return {}
  if (how === 'done') {
    if (outcome !== 'activate') throw new Error(`model: rollout done → ${outcome}?`)
    return {
      outcome,
      commit: () => {
        for (const other of s.revs) if (other.status === 'active') other.status = 'superseded'
        r.status = 'active'
      },
    }
  }
  const failed = (...events: EventKind[]) => {
    r.status = 'failed'
    r.failedBy = 'rollout'
    r.events.push('rollout-failed', ...events)
  }
  switch (outcome) {
    case 'fail': {
      // The active revision (if any) keeps serving; nothing is re-applied; the lock is released.
      const why = r.reason === 'auto-rollback' ? 'an auto-rollback' : 'auto_rollback: false'
      return { outcome: `${outcome} (${command}: ${why})`, commit: () => failed() }
    }
    case 'fail+remove':
      // Nothing active to return to: all of ours is removed by label, every applied revision `removed`;
      // the stored infra config stays.
      return {
        outcome,
        commit: () => {
          failed('removed')
          for (const other of s.revs) if (other.applied) other.removed = true
          s.cluster = {}
          s.dirty = false
          s.lastApplied = null
        },
      }
    case 'roll back': {
      // A new `auto-rollback` revision restores the active one: its artifact, infra snapshot and
      // deployment config, under its render number (so its manifests are the active revision's); it is
      // applied and rolls out, and the stored infra config becomes the active revision's. The active
      // revision stays active until it completes.
      const a = active(s) as Rev
      const back = startRevision(
        s,
        { reason: 'auto-rollback', artifact: a.artifact, cfg: a.cfg, renderNo: a.renderNo, rolledBackFrom: a.n, autoRollback: a.autoRollback },
        undefined,
        STARTED,
        true,
      )
      const before = s.cluster.Deployment as Content
      return {
        outcome,
        // The Deployment's spec (image, cpu, revision annotation) is the one the rollout failed with.
        sameSpec: before.artifact === a.artifact && before.cfg.cores === a.cfg.cores && before.renderNo === a.renderNo,
        commit: () => {
          failed('auto-rollback')
          r.rolledBackTo = back.n
          back.commit?.()
        },
      }
    }
    default:
      throw new Error(`model: ${command} → ${outcome}?`)
  }
}

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

const json = (value: unknown) => (typeof value === 'string' ? JSON.parse(value) : value) as Record<string, number>

/** The cluster's objects of a serve, reduced to what a revision decides. */
function clusterView(fake: FakeKubernetes, serve: string) {
  const view: Record<string, unknown> = {}
  for (const object of fake.list().filter((o) => o.metadata.labels?.['darwin.ml-serve/serve'] === serve)) {
    expect(object.metadata.name).toBe(`${serve}-${ENV}`)
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
  for (const kind of KINDS) {
    const c = cluster[kind]
    if (!c) continue
    if (kind === 'Deployment') view[kind] = { image: `registry.example.com/${serve}:${c.artifact}`, cpu: String(c.cfg.cores), revision: String(c.renderNo) }
    else if (kind === 'HorizontalPodAutoscaler') view[kind] = { min: c.cfg.min, max: c.cfg.max }
    else view[kind] = { version: c.artifact }
  }
  return view
}

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
  for (const [i, s] of m.serves.entries()) {
    const mine = rows.filter((row) => row.serve === s.name)
    // (d) The revisions table is the model's: every 2xx recorded as expected, every refusal recorded nothing.
    const actual = mine.map((row) => {
      const snapshot = json(row.infra_snapshot)
      return {
        n: row.revision,
        status: row.status,
        reason: row.reason,
        artifact: row.artifact_version,
        rolledBackFrom: row.rolled_back_from,
        rolledBackTo: row.rolled_back_to,
        autoRollback: (json(row.deployment_config) as { auto_rollback?: boolean }).auto_rollback ?? null,
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
      cfg: showCfg(r.cfg),
      applied: r.applied,
      removed: r.removed,
    }))
    expect({ serve: s.name, revisions: actual }).toEqual({ serve: s.name, revisions: expected })
    // The tracker's decisions: its events per revision (all by rollout-tracker), and an audit entry of
    // its own for each automatic rollback and each removal of a failed first rollout.
    const eventsOf = (n: number) => events.filter((e) => e.serve === s.name && e.revision === n).map((e) => `${e.kind} by ${e.actor}`)
    expect({ serve: s.name, events: s.revs.map((r) => ({ n: r.n, events: eventsOf(r.n) })) }).toEqual({
      serve: s.name,
      events: s.revs.map((r) => ({ n: r.n, events: r.events.map((kind) => `${kind} by rollout-tracker`) })),
    })
    const decisions = s.revs.filter((r) => r.reason === 'auto-rollback').length + s.revs.filter((r) => r.events.includes('removed')).length
    expect({ serve: s.name, trackerAudits: Number(trackerAudits.find((row) => row.serve === s.name)?.entries ?? 0) }).toEqual({ serve: s.name, trackerAudits: decisions })

    // (c) One rollout at a time; a lock exactly while one is in flight, held by it.
    const flying = mine.filter((row) => row.status === 'pending' || row.status === 'deploying')
    expect(flying.length).toBeLessThanOrEqual(1)
    expect(mine.filter((row) => row.status === 'active').length).toBeLessThanOrEqual(1)
    const held = locks.filter((lock) => lock.serve === s.name)
    expect({ serve: s.name, locks: held.map((lock) => lock.deployment_id) }).toEqual({ serve: s.name, locks: flying.map((row) => row.id) })

    // (a) The cluster, object by object, is what the model says …
    expect({ serve: s.name, cluster: clusterView(real.fake, s.name) }).toEqual({ serve: s.name, cluster: expectedView(s.name, s.cluster) })
    // … and that is the render of the revision it stands for, unless a 502 left a partial one.
    const state = stateOf(s)
    if (state === 'empty') expect(s.cluster).toEqual({})
    const target = intended(s)
    if (!s.dirty) {
      const last = s.lastApplied === null ? undefined : rev(s, s.lastApplied)
      if (last) for (const kind of KINDS) expect(s.cluster[kind]).toEqual(contentOf(last))
      else expect(s.cluster).toEqual({})
      if (target) expect({ serve: s.name, clusterHolds: last?.n ?? null }).toEqual({ serve: s.name, clusterHolds: target.n })
    }
    // The cluster stands for a revision neither in flight nor active only after a rollout that failed
    // without rolling back (see intended()).
    if (target && target !== inFlight(s) && target !== active(s)) expectFailedWithoutRollback(s, target)
    // A revision rolled back automatically names the auto-rollback revision, which restores the active one.
    for (const r of s.revs.filter((r) => r.rolledBackTo !== null)) {
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

    // (b) The stored infra config is what runs (or rolls out).
    if (i === touched || touched === undefined) {
      const replica = real.replicas[i % real.replicas.length] as Replica
      const stored = await replica.request('GET', `/api/v1/serve/${s.name}/infra-config/${ENV}`)
      expect(stored.status).toBe(200)
      const c = stored.body.data.api_serve_infra_config
      expect({ serve: s.name, stored: showCfg({ cores: c.cores, min: c.min_replicas, max: c.max_replicas }) }).toEqual({ serve: s.name, stored: showCfg(s.stored) })
      const current = await replica.request('GET', `/api/v1/serve/${s.name}/deployment/${ENV}`)
      expect(current.status).toBe(200)
      expect({ active: current.body.data.active?.revision ?? null, inFlight: current.body.data.in_flight?.revision ?? null }).toEqual({
        active: active(s)?.n ?? null,
        inFlight: inFlight(s)?.n ?? null,
      })
    }
    if (target) expect({ serve: s.name, stored: showCfg(s.stored), of: target.n }).toEqual({ serve: s.name, stored: showCfg(target.cfg), of: target.n })
  }
}

// --- Commands ---

type Cmd = fc.AsyncCommand<Model, Real>

abstract class Base implements Cmd {
  constructor(
    readonly serve: number,
    readonly via: number,
  ) {}
  check() {
    return true
  }
  abstract label(m?: Model): string
  abstract act(m: Model, s: ServeModel, real: Real): Promise<void>
  async run(m: Model, real: Real) {
    real.stats.commands++
    await this.settle(m, real)
  }
  /** The command and the checks after it. */
  async settle(m: Model, real: Real) {
    await this.act(m, m.serves[this.serve] as ServeModel, real)
    await checkInvariants(m, real, this.serve)
  }
  toString() {
    return `${this.label()} @${'AB'[this.via]}`
  }
}

const faultText = (fault?: Fault) => (fault ? ` [${fault.on} ${fault.status}]` : '')

class Deploy extends Base {
  constructor(
    serve: number,
    via: number,
    readonly artifact: Artifact,
    readonly fault?: Fault,
    /** Sent as api_serve_deployment_config.auto_rollback (undefined: left out, inherited). */
    readonly autoRollback?: boolean,
  ) {
    super(serve, via)
  }
  label() {
    const autoRollback = this.autoRollback === undefined ? '' : ` auto_rollback:${this.autoRollback}`
    return `s${this.serve} deploy ${this.artifact}${autoRollback}${faultText(this.fault)}`
  }
  async act(m: Model, s: ServeModel, real: Real) {
    const expected = expectDeploy(m, s, this.artifact, this.autoRollback, this.fault)
    const config = this.autoRollback === undefined ? {} : { api_serve_deployment_config: { auto_rollback: this.autoRollback } }
    const answer = await send(real, this.via, this.fault, 'POST', `/api/v1/serve/${s.name}/deploy`, { env: ENV, artifact_version: this.artifact, ...config })
    expectAnswer(real, 'deploy', answer, expected)
    expected.commit?.()
  }
}

class InfraPatch extends Base {
  constructor(
    serve: number,
    via: number,
    readonly fields: PatchFields | 'same',
    readonly fault?: Fault,
  ) {
    super(serve, via)
  }
  label() {
    return `s${this.serve} PATCH ${JSON.stringify(this.fields)}${faultText(this.fault)}`
  }
  async act(m: Model, s: ServeModel, real: Real) {
    // 'same': the stored values again, a PATCH that changes nothing.
    const fields = this.fields === 'same' ? { cores: s.stored.cores, max_replicas: s.stored.max } : this.fields
    const expected = expectInfraPatch(m, s, fields, this.fault)
    const answer = await send(real, this.via, this.fault, 'PATCH', `/api/v1/serve/${s.name}/infra-config/${ENV}`, { api_serve_infra_config: fields })
    expectAnswer(real, 'infra PATCH', answer, expected)
    expected.commit?.()
  }
}

class Rollback extends Base {
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
    return `s${this.serve} rollback ${to}${this.force ? ' force' : ''}${faultText(this.fault)}`
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

class Undeploy extends Base {
  constructor(
    serve: number,
    via: number,
    readonly originalPath: boolean,
    readonly fault?: Fault,
  ) {
    super(serve, via)
  }
  label() {
    return `s${this.serve} undeploy${this.originalPath ? ' (…/undeploy/{env})' : ''}${faultText(this.fault)}`
  }
  async act(m: Model, s: ServeModel, real: Real) {
    const expected = expectUndeploy(m, s, this.fault)
    const answer = this.originalPath
      ? await send(real, this.via, this.fault, 'POST', `/api/v1/serve/${s.name}/undeploy/${ENV}`)
      : await send(real, this.via, this.fault, 'POST', `/api/v1/serve/${s.name}/undeploy`, { env: ENV })
    expectAnswer(real, 'undeploy', answer, expected)
    expected.commit?.()
  }
}

const deploymentName = (serve: string) => `${serve}-${ENV}`

/** What a Deployment controller reports: the rollout of the current spec is complete, failed, or under way. */
function reportRollout(fake: FakeKubernetes, serve: string, how: 'done' | 'failed' | 'progressing') {
  const deployment = fake.get('Deployment', NS, deploymentName(serve))
  if (!deployment) return
  const observedGeneration = Number(deployment.metadata.generation)
  const status =
    how === 'done'
      ? { observedGeneration, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 }
      : how === 'failed'
        ? { observedGeneration, replicas: 1, updatedReplicas: 0, readyReplicas: 0, availableReplicas: 0, conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }] }
        : { observedGeneration, replicas: 1, updatedReplicas: 0, readyReplicas: 0, availableReplicas: 0, conditions: [{ type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated' }] }
  fake.setStatus('Deployment', NS, deploymentName(serve), status)
}

/** The Deployment of one serve reports its rollout's end; the tracker of one instance (or both at once) ticks. */
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
    return `s${this.serve} rollout ${this.how === 'done' ? 'completes' : 'fails (ProgressDeadlineExceeded)'}${this.bothReplicas ? ', both trackers tick' : ''}`
  }
  async act(m: Model, s: ServeModel, real: Real) {
    const expected = expectRolloutEnd(m, s, this.how)
    // The other serves' rollouts are under way: the tick (which follows every rollout) leaves them be.
    for (const other of m.serves) reportRollout(real.fake, other.name, other === s ? this.how : 'progressing')
    if (this.bothReplicas) await Promise.all(real.replicas.map((replica) => replica.tick()))
    else await (real.replicas[this.via] as Replica).tick()
    count(real, `rollout ${this.how}${this.bothReplicas ? ' (both trackers)' : ''} → ${expected.outcome ?? 'nothing to end'}`)
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
    return `s${this.serve} deploy ${this.artifact} on A and B at once`
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

export const commandArbs: fc.Arbitrary<Cmd>[] = [
  fc.tuple(serveArb, viaArb, artifactArb, applyFaultArb).map(([serve, via, artifact, fault]) => new Deploy(serve, via, artifact, fault)),
  fc.tuple(serveArb, viaArb, artifactArb).map(([serve, via, artifact]) => new Deploy(serve, via, artifact)),
  // A deploy that says whether a failed rollout rolls back by itself (the others inherit the active revision's).
  fc.tuple(serveArb, viaArb, artifactArb, fc.boolean(), applyFaultArb).map(([serve, via, artifact, autoRollback, fault]) => new Deploy(serve, via, artifact, fault, autoRollback)),
  fc.tuple(serveArb, viaArb, patchArb, applyFaultArb).map(([serve, via, fields, fault]) => new InfraPatch(serve, via, fields, fault)),
  fc.tuple(serveArb, viaArb, rollbackTargetArb, fc.boolean(), applyFaultArb).map(([serve, via, target, force, fault]) => new Rollback(serve, via, target, force, fault)),
  fc
    .tuple(serveArb, viaArb, fc.oneof(fc.constant<RollbackTarget>({ kind: 'default' }), fc.nat(20).map((pick): RollbackTarget => ({ kind: 'any', pick }))))
    .map(([serve, via, target]) => new Rollback(serve, via, target, false)),
  fc.tuple(serveArb, viaArb, fc.boolean(), deleteFaultArb).map(([serve, via, originalPath, fault]) => new Undeploy(serve, via, originalPath, fault)),
  fc.tuple(serveArb, viaArb, fc.boolean()).map(([serve, via, both]) => new RolloutEnds(serve, via, 'done', both)),
  fc.tuple(serveArb, viaArb).map(([serve, via]) => new RolloutEnds(serve, via, 'done', false)),
  fc.tuple(serveArb, viaArb).map(([serve, via]) => new RolloutEnds(serve, via, 'failed', false)),
  // Both trackers see the same failure: one rolls back (or removes), the other finds it ended.
  fc.tuple(serveArb, viaArb).map(([serve, via]) => new RolloutEnds(serve, via, 'failed', true)),
  fc.tuple(serveArb, artifactArb).map(([serve, artifact]) => new RaceDeploy(serve, artifact)),
]

/** Quiescence: every rollout that can complete does; then (a)–(d) once more. */
export async function quiesce(m: Model, real: Real) {
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
