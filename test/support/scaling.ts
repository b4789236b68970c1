/**
 * An in-memory stand-in for the deployments store and the cluster driver's set-bounds call, for
 * scaling tick tests and the benchmark: it counts cluster calls and remembers what is applied.
 */
import type { ScalingEvent, ScalingTarget } from '../../src/modules/scaling/scheduler'
import type { ReplicaBounds } from '../../src/modules/scaling/windows'

export interface FakeScaling {
  /** The stored targets; `applied` is updated by setBounds. */
  readonly targets: ScalingTarget[]
  calls: { serve: string; env: string; bounds: ReplicaBounds }[]
  events: ScalingEvent[]
  /** Makes setBounds throw for this serve. */
  failFor: Set<string>
  listTargets(): Promise<ScalingTarget[]>
  setBounds(target: ScalingTarget, bounds: ReplicaBounds): Promise<void>
  recordEvent(event: ScalingEvent): Promise<void>
}

export function fakeScaling(targets: ScalingTarget[]): FakeScaling {
  const key = (target: ScalingTarget) => `${target.serve}\n${target.env}`
  // Indexed, so a benchmark over thousands of targets measures the tick rather than this lookup.
  const stored = new Map(targets.map((target) => [key(target), target]))
  const fake: FakeScaling = {
    targets,
    calls: [],
    events: [],
    failFor: new Set(),
    // Copies, as rows read from a database would be: a tick cannot see its own writes through them.
    listTargets: async () => fake.targets.map((target) => ({ ...target, applied: { ...target.applied } })),
    setBounds: async (target, bounds) => {
      if (fake.failFor.has(target.serve)) throw new Error(`cluster refused ${target.serve}`)
      fake.calls.push({ serve: target.serve, env: target.env, bounds })
      const row = stored.get(key(target))
      if (row) row.applied = { ...bounds }
    },
    recordEvent: async (event) => void fake.events.push(event),
  }
  return fake
}

/** Marks (serve, env) as deployed: an `active` deployments row, as the deployment module would leave it. */
export async function insertActiveDeployment(
  query: (sql: string, params?: unknown[]) => Promise<unknown>,
  serve: string,
  env: string,
): Promise<void> {
  await query(
    `insert into deployments (serve_id, environment_id, revision, reason, artifact_version, image, deployment_config, infra_snapshot, rendered, manifests_yaml, status, created_by, request_id, created_at, updated_at, activated_at, applied_at)
     select s.id, e.id, coalesce((select max(revision) from deployments d where d.serve_id = s.id), 0) + 1, 'deploy', 'v1', 'img:v1',
            '{"deployment_strategy":"rolling","environment_variables":{}}', '{}', '{}', '', 'active', 'admin', 'test', now(3), now(3), now(3), now(3)
     from serves s, environments e where s.name = ? and e.name = ?`,
    [serve, env],
  )
}
