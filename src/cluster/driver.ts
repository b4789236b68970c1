/**
 * What the control plane asks of a cluster, whichever way it is reached: the Kubernetes API directly
 * (kubernetes.ts) or DCM (dcm.ts). Chosen per environment by `cluster_driver` (default `kubernetes`).
 */
import type { EnvironmentRow } from '../db/schema'
import type { KubernetesObject, ObjectRef, RenderedServe } from '../render'

/** Where a serve runs: the serve's name and the parts of its environment a driver needs. */
export interface ClusterTarget {
  serve: string
  environment: {
    name: string
    namespace: string
    cluster_name: string
    cluster_driver: 'kubernetes' | 'dcm'
    /** kubeconfig context for the kubernetes driver; empty = in-cluster, else the current context. */
    kube_context: string
  }
}

/** The target of a serve in an environment, from the environment's stored settings. */
export function clusterTargetOf(
  serve: string,
  environment: Pick<EnvironmentRow, 'name' | 'namespace' | 'clusterName' | 'clusterDriver' | 'kubeContext'>,
): ClusterTarget {
  return {
    serve,
    environment: {
      name: environment.name,
      namespace: environment.namespace,
      cluster_name: environment.clusterName,
      cluster_driver: environment.clusterDriver,
      kube_context: environment.kubeContext,
    },
  }
}

/** Values the driver writes into the Secrets the render names (`managedSecrets`), never into manifests. */
export interface SecretValues {
  mlflowPassword?: string
}

export interface ApplyResult {
  /** `Kind/name` of each object applied, in apply order. */
  applied: string[]
  /** `Kind/name` of each object removed because the new render no longer has it. */
  pruned: string[]
}

export type RolloutPhase = 'progressing' | 'complete' | 'failed' | 'absent'

export interface RolloutCondition {
  type: string
  status: string
  reason?: string
  message?: string
}

export interface RolloutStatus {
  phase: RolloutPhase
  desiredReplicas: number
  updatedReplicas: number
  readyReplicas: number
  availableReplicas: number
  conditions: RolloutCondition[]
  /** The most telling recent failure, e.g. ImagePullBackOff, CrashLoopBackOff, ProgressDeadlineExceeded. */
  failureReason?: string
}

/** One Deployment as its controller and its pods report it (a canary's health, the stable side's size). */
export interface WorkloadStatus {
  /** The replicas asked for: `spec.replicas`, else (an autoscaled one) what the controller runs. */
  desiredReplicas: number
  /** The pods the controller runs now. */
  replicas: number
  readyReplicas: number
  /** Container restarts over its pods. */
  restarts: number
  /** A container waiting reason that will not resolve by itself (CrashLoopBackOff, ImagePullBackOff…). */
  failureReason?: string
}

/** The calls that reach a cluster. */
export interface ClusterCalls {
  apply(target: ClusterTarget, rendered: RenderedServe, secrets?: SecretValues): Promise<ApplyResult>
  /** Idempotent: removing what is not there succeeds. */
  remove(target: ClusterTarget): Promise<void>
  status(target: ClusterTarget): Promise<RolloutStatus>
  /** Changes only the replica bounds (a schedule window opening or closing), without a full apply. */
  setAutoscalingBounds(target: ClusterTarget, bounds: { min: number; max: number }): Promise<void>
  /** Applies these objects as given and prunes nothing (a canary's, beside the active revision's). */
  applyObjects(target: ClusterTarget, objects: KubernetesObject[]): Promise<void>
  /** Deletes these objects; one already gone is fine. */
  removeObjects(target: ClusterTarget, refs: ObjectRef[]): Promise<void>
  /** The Deployment `name` and its pods; undefined when there is none. */
  workload(target: ClusterTarget, name: string): Promise<WorkloadStatus | undefined>
}

export interface ClusterDriver extends ClusterCalls {
  /**
   * Throws a ClusterError `not_configured`, naming what to set, when this driver has no way to reach
   * the target's cluster at all (no credentials, no such kube context). No network call: a change is
   * refused before anything about it is recorded.
   */
  ensureConfigured(target: ClusterTarget): void
  /** Whether the driver can be used with its default settings, and how (for /readyz and the start-up log). */
  availability(): DriverAvailability
}

export interface DriverAvailability {
  usable: boolean
  /** Where the credentials or the URL come from, or what is missing; never a secret. */
  detail: string
}

export type ClusterErrorKind = 'unavailable' | 'rejected' | 'forbidden' | 'conflict' | 'timeout' | 'not_configured'

/** A cluster (or DCM) call that failed; `message` is the server's own message when it sent one. */
export class ClusterError extends Error {
  /** For a failed apply: `Kind/name` of the objects written before it failed (the cluster holds them). */
  applied?: string[]

  constructor(
    readonly kind: ClusterErrorKind,
    message: string,
    /** The HTTP status the server answered; undefined when none arrived. */
    readonly httpStatus?: number,
  ) {
    super(message)
    this.name = 'ClusterError'
  }
}

/** The kind of error an HTTP status means. */
export function errorKindOf(status: number): ClusterErrorKind {
  if (status === 401 || status === 403) return 'forbidden'
  if (status === 409) return 'conflict'
  if (status === 408 || status === 504) return 'timeout'
  if (status >= 500 || status === 429) return 'unavailable'
  return 'rejected'
}

/** Worth another try: the server was unreachable, overloaded or broken, not the request. */
export const isRetryable = (error: ClusterError) => error.kind === 'unavailable' || error.kind === 'timeout'

export interface RetryPolicy {
  attempts: number
  /** Delay before the second attempt; doubled for each further one. */
  backoffMs: number
}

/** Runs `call` until it succeeds, throws a non-retryable ClusterError, or `attempts` are spent. */
export async function withRetries<T>(policy: RetryPolicy, call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call()
    } catch (error) {
      if (!(error instanceof ClusterError) || !isRetryable(error) || attempt >= policy.attempts) throw error
      await Bun.sleep(policy.backoffMs * 2 ** (attempt - 1))
    }
  }
}
