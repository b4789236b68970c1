/**
 * The placement state machine, written down: for each state of a serve in an environment and each
 * command, what happens. The commands (service.ts) decide from this table, the README shows it (a
 * test keeps the two equal), and the model-based test checks the service against it.
 */

/**
 * - `empty`: nothing active, nothing rolling out, nothing of ours in the cluster (never deployed, or undeployed).
 * - `failed`: nothing active or rolling out, but a failed or cancelled rollout may have left objects.
 * - `rolling-out`: a first revision is rolling out.
 * - `active`: a revision is active.
 * - `active+rolling-out`: a revision is active and a newer one is rolling out.
 */
export const PLACEMENT_STATES = ['empty', 'failed', 'rolling-out', 'active', 'active+rolling-out'] as const
export type PlacementState = (typeof PLACEMENT_STATES)[number]

export const PLACEMENT_COMMANDS = ['deploy', 'infra PATCH', 'rollback', 'undeploy', 'scaling bounds', 'rollout done', 'rollout failed'] as const
export type PlacementCommand = (typeof PLACEMENT_COMMANDS)[number]

export type Outcome =
  /** Record a revision and apply it (it rolls out). */
  | 'start'
  /** Record a revision that takes the lock over from the rollout in flight, and apply it; once applied, the interrupted rollout is `cancelled`. */
  | 'preempt'
  /** 409 CHANGE_IN_PROGRESS: one deploy at a time. */
  | 'refuse'
  /** Store the config only: nothing runs that it would change. */
  | 'store'
  /** Remove by label from the cluster, then mark what was live `undeployed`/`cancelled`. */
  | 'remove'
  /** Take the lock over from the rollout in flight, remove by label, then mark it `cancelled` (and the active one `undeployed`). */
  | 'preempt+remove'
  /** 200, no cluster call, nothing recorded. */
  | 'nothing'
  /** The scaling tick sets the bounds in force on the active revision's autoscaler. */
  | 'apply bounds'
  /** The rollout in flight becomes `active`; the previous active one `superseded`; the lock is released. */
  | 'activate'
  /** The rollout in flight becomes `failed`; the active one (if any) keeps serving; the lock is released. */
  | 'fail'
  /** Not possible in this state. */
  | '—'

export const TRANSITIONS: Record<PlacementState, Record<PlacementCommand, Outcome>> = {
  empty: { deploy: 'start', 'infra PATCH': 'store', rollback: 'start', undeploy: 'nothing', 'scaling bounds': '—', 'rollout done': '—', 'rollout failed': '—' },
  failed: { deploy: 'start', 'infra PATCH': 'store', rollback: 'start', undeploy: 'remove', 'scaling bounds': '—', 'rollout done': '—', 'rollout failed': '—' },
  'rolling-out': { deploy: 'refuse', 'infra PATCH': 'preempt', rollback: 'preempt', undeploy: 'preempt+remove', 'scaling bounds': '—', 'rollout done': 'activate', 'rollout failed': 'fail' },
  active: { deploy: 'start', 'infra PATCH': 'start', rollback: 'start', undeploy: 'remove', 'scaling bounds': 'apply bounds', 'rollout done': '—', 'rollout failed': '—' },
  'active+rolling-out': { deploy: 'refuse', 'infra PATCH': 'preempt', rollback: 'preempt', undeploy: 'preempt+remove', 'scaling bounds': 'apply bounds', 'rollout done': 'activate', 'rollout failed': 'fail' },
}

/** The table as Markdown (the README holds exactly this). */
export function transitionTableMarkdown(): string {
  const header = `| state \\ command | ${PLACEMENT_COMMANDS.join(' | ')} |`
  const rule = `| --- | ${PLACEMENT_COMMANDS.map(() => '---').join(' | ')} |`
  const rows = PLACEMENT_STATES.map((state) => `| \`${state}\` | ${PLACEMENT_COMMANDS.map((command) => TRANSITIONS[state][command]).join(' | ')} |`)
  return [header, rule, ...rows].join('\n')
}
