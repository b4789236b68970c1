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
