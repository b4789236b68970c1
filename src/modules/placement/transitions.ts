/**
 * The placement state machine, written down: for each state of a serve in an environment and each
 * command, what happens. The commands (service.ts, tracker.ts, canary.ts) decide from this table, the
 * README shows it (a test keeps the two equal), and the model-based test checks the service against it.
 */

/**
 * - `empty`: nothing active, nothing rolling out, nothing of ours in the cluster (never deployed, or undeployed).
 * - `failed`: nothing active or rolling out, but a failed or cancelled rollout may have left objects.
 * - `rolling-out`: a first revision is rolling out.
 * - `active`: a revision is active.
 * - `active+rolling-out`: a revision is active and a newer one is rolling out (a canary being promoted too).
 * - `active+canary`: a revision is active and a newer one runs beside it as a canary, stepping up its traffic.
 */
export const PLACEMENT_STATES = ['empty', 'failed', 'rolling-out', 'active', 'active+rolling-out', 'active+canary'] as const
export type PlacementState = (typeof PLACEMENT_STATES)[number]

/**
 * The tracker's commands: `rollout done` (a rollout completed; for a canary, its step stayed healthy
 * for `step_seconds`), `rollout failed` (a rollout failed; a canary was not healthy), and the same
 * failure of a revision that asked `"auto_rollback": false` (or is itself an automatic rollback).
 */
export const PLACEMENT_COMMANDS = [
  'deploy',
  'infra PATCH',
  'rollback',
  'undeploy',
  'promote',
  'abort',
  'scaling bounds',
  'rollout done',
  'rollout failed',
  'rollout failed, no auto-rollback',
] as const
export type PlacementCommand = (typeof PLACEMENT_COMMANDS)[number]

export type Outcome =
  /** Record a revision and apply it (it rolls out; a canary starts beside the active revision). */
  | 'start'
  /** Record a revision that takes the lock over from the rollout in flight, and apply it; once applied, the interrupted rollout is `cancelled`. */
  | 'preempt'
  /** 409 CHANGE_IN_PROGRESS: one deploy at a time; a canary is promoted, aborted or undeployed first. */
  | 'refuse'
  /** Store the config only: nothing runs that it would change. */
  | 'store'
  /** Remove by label from the cluster, then mark what was live `undeployed`/`cancelled`. */
  | 'remove'
  /** Take the lock over from the rollout in flight, remove by label (both sides of a canary), then mark it `cancelled` (and the active one `undeployed`). */
  | 'preempt+remove'
  /** 200, no cluster call, nothing recorded. */
  | 'nothing'
  /** 409 NO_CANARY: there is no canary to promote or abort. */
  | 'no canary'
  /** The canary moves to its next step (`{"full": true}`: straight to 100 %, the full promotion). */
  | 'promote'
  /** The canary's objects are removed and all traffic goes back to the active revision; the canary ends `cancelled` (by hand) or `failed`. */
  | 'abort'
  /** The scaling tick sets the bounds in force on the active revision's autoscaler (a canary follows in proportion). */
  | 'apply bounds'
  /** The rollout in flight becomes `active`; the previous active one `superseded`; the lock is released. */
  | 'activate'
  /** The canary's step is over: it moves to the next step, or at 100 % its full render is applied (then `active+rolling-out`). */
  | 'next step'
  /** The rollout in flight becomes `failed`; the active one (if any) keeps its pods; the lock is released. */
  | 'fail'
  /** The rollout in flight becomes `failed` and its objects are removed: there was nothing to return to. */
  | 'fail+remove'
  /** The rollout in flight becomes `failed`; an `auto-rollback` revision re-applies the active revision (it rolls out). */
  | 'roll back'
  /** The canary stays at its step, not promoted, until promote, abort or undeploy. */
  | 'hold'
  /** Not possible in this state. */
  | '—'

export const TRANSITIONS: Record<PlacementState, Record<PlacementCommand, Outcome>> = {
  empty: {
    deploy: 'start', 'infra PATCH': 'store', rollback: 'start', undeploy: 'nothing', promote: 'no canary', abort: 'no canary',
    'scaling bounds': '—', 'rollout done': '—', 'rollout failed': '—', 'rollout failed, no auto-rollback': '—',
  },
  failed: {
    deploy: 'start', 'infra PATCH': 'store', rollback: 'start', undeploy: 'remove', promote: 'no canary', abort: 'no canary',
    'scaling bounds': '—', 'rollout done': '—', 'rollout failed': '—', 'rollout failed, no auto-rollback': '—',
  },
  'rolling-out': {
    deploy: 'refuse', 'infra PATCH': 'preempt', rollback: 'preempt', undeploy: 'preempt+remove', promote: 'no canary', abort: 'no canary',
    'scaling bounds': '—', 'rollout done': 'activate', 'rollout failed': 'fail+remove', 'rollout failed, no auto-rollback': 'fail',
  },
  active: {
    deploy: 'start', 'infra PATCH': 'start', rollback: 'start', undeploy: 'remove', promote: 'no canary', abort: 'no canary',
    'scaling bounds': 'apply bounds', 'rollout done': '—', 'rollout failed': '—', 'rollout failed, no auto-rollback': '—',
  },
  'active+rolling-out': {
    deploy: 'refuse', 'infra PATCH': 'preempt', rollback: 'preempt', undeploy: 'preempt+remove', promote: 'no canary', abort: 'no canary',
    'scaling bounds': 'apply bounds', 'rollout done': 'activate', 'rollout failed': 'roll back', 'rollout failed, no auto-rollback': 'fail',
  },
  'active+canary': {
    deploy: 'refuse', 'infra PATCH': 'refuse', rollback: 'refuse', undeploy: 'preempt+remove', promote: 'promote', abort: 'abort',
    'scaling bounds': 'apply bounds', 'rollout done': 'next step', 'rollout failed': 'abort', 'rollout failed, no auto-rollback': 'hold',
  },
}

/** The table as Markdown (the README holds exactly this). */
export function transitionTableMarkdown(): string {
  const header = `| state \\ command | ${PLACEMENT_COMMANDS.join(' | ')} |`
  const rule = `| --- | ${PLACEMENT_COMMANDS.map(() => '---').join(' | ')} |`
  const rows = PLACEMENT_STATES.map((state) => `| \`${state}\` | ${PLACEMENT_COMMANDS.map((command) => TRANSITIONS[state][command]).join(' | ')} |`)
  return [header, rule, ...rows].join('\n')
}
