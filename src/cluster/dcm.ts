/**
 * The DCM driver: the original's contract with the Darwin Cluster Manager (ORIGINAL.md), JSON over
 * HTTP to DCM_URL. DCM installs the Helm chart `darwin-fastapi-serve` with the rendered values; ray and
 * workflow serves need the kubernetes driver (the original's DCM has no chart for them).
 *
 * - apply: `POST /resource-instance/` registers chart + values (`version` = the artifact version,
 *   `artifact_id` = the resource id); when DCM answers 409 (already registered),
 *   `PATCH /resource-instance/values` replaces the values instead; then `POST /resource-instance/start`
 *   installs/upgrades it on the environment's cluster and namespace.
 * - remove: `POST /resource-instance/stop` (a 404 counts as already removed).
 * - status: `POST /resource-instance/status` → `data.status.pods` (DCM's `ResourceStatus`: `pods: [{name,
 *   status, message}]`, null when there are none; `status` is the pod phase, `Pending` for a running pod
 *   whose containers are not all ready), mapped onto a rollout phase and replica counts.
 * - setAutoscalingBounds: `PATCH /resource-instance/values` with only `replicaCount` (= min) and
 *   `hpa.maxReplicas` (= max) — DCM merges values — then `start` to upgrade the release.
 * The resource id is `{env}-{serve}`. Requests time out and are retried like the Kubernetes driver's.
 */
import { DCM_CHART, DCM_REFUSALS, type RenderedServe } from '../render'
import type { RolloutCondition, WorkloadStatus } from './driver'
import {
  type ApplyResult,
  ClusterError,
  type ClusterDriver,
  type ClusterTarget,
  type DriverAvailability,
  errorKindOf,
  type RetryPolicy,
  type RolloutStatus,
  type SecretValues,
  withRetries,
} from './driver'

export interface DcmDriverOptions {
  url: string
  requestTimeoutMs: number
  retry: RetryPolicy
}

/** DCM's name for a serve in an environment. */
export const dcmResourceId = (target: ClusterTarget) => `${target.environment.name}-${target.serve}`

/** One pod as DCM reports it (`PodsData` in dto/resource_instance/resource_instance_response_dto.go). */
export interface DcmPod {
  name: string
  /** The pod phase (Pending, Running, Succeeded, Failed, Unknown); DCM reports Running only when every container is ready. */
  status: string
  message: string
}

/** `{deployment}-{pod-template-hash}`: the pods of one ReplicaSet, i.e. one pod template, share it. */
const templateOf = (podName: string) => podName.slice(0, Math.max(0, podName.lastIndexOf('-')))

/**
 * A rollout read off DCM's pods. Pods of templates in `previous` (those running before this apply)
 * do not count as the new revision's; without it (another process applied), every pod counts.
 * Complete: at least one pod, every live pod of the new template, and all of them Running (ready).
 */
export function rolloutOfPods(pods: readonly DcmPod[], previous?: ReadonlySet<string>): RolloutStatus {
  if (pods.length === 0) return { phase: 'absent', desiredReplicas: 0, updatedReplicas: 0, readyReplicas: 0, availableReplicas: 0, conditions: [] }
  const live = pods.filter((pod) => pod.status !== 'Succeeded' && pod.status !== 'Failed')
  const current = previous ? live.filter((pod) => !previous.has(templateOf(pod.name))) : live
  const ready = current.filter((pod) => pod.status === 'Running').length
  const complete = current.length > 0 && current.length === live.length && ready === current.length
  const notReady = pods.filter((pod) => pod.status !== 'Running')
  const conditions: RolloutCondition[] = notReady.map((pod) => ({ type: 'PodNotReady', status: pod.status, reason: pod.name, ...(pod.message ? { message: pod.message } : {}) }))
  const failureReason = notReady.find((pod) => pod.message)?.message
  return {
    phase: complete ? 'complete' : 'progressing',
    desiredReplicas: current.length,
    updatedReplicas: current.length,
    readyReplicas: ready,
    availableReplicas: ready,
    conditions,
    ...(failureReason && !complete ? { failureReason } : {}),
  }
}

function podsOf(answer: unknown): DcmPod[] {
  const status = (answer as { data?: { status?: unknown } } | null)?.data?.status
  if (status === null || status === undefined) return []
  if (typeof status !== 'object' || Array.isArray(status)) throw new ClusterError('unavailable', 'DCM answered a status that is not a ResourceStatus object (data.status.pods)')
  const pods = (status as { pods?: unknown }).pods
  if (pods === null || pods === undefined) return []
  if (!Array.isArray(pods)) throw new ClusterError('unavailable', 'DCM answered data.status.pods that is not a list')
  return pods.map((pod) => {
    const { name, status: phase, message } = (pod ?? {}) as Record<string, unknown>
    return { name: String(name ?? ''), status: String(phase ?? ''), message: typeof message === 'string' ? message : '' }
  })
}

export class DcmDriver implements ClusterDriver {
  /**
   * By resource id: the pod templates that were running when this process last applied it. DCM's
   * status names pods, not revisions; until a pod of a new template runs, the old ones are not the
   * rollout's end (an upgrade always changes the template: the pods carry the revision annotation).
   */
  private readonly previousTemplates = new Map<string, Set<string>>()

  constructor(private readonly options: DcmDriverOptions) {}

  /** One JSON call; non-2xx becomes a ClusterError with DCM's message. */
  private request<T>(method: 'POST' | 'PATCH', path: string, body: unknown): Promise<T> {
    return withRetries(this.options.retry, async () => {
      let response: Response
      try {
        response = await fetch(`${this.options.url}${path}`, {
          method,
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.options.requestTimeoutMs),
        })
      } catch (error) {
        const name = (error as { name?: unknown } | null)?.name
        if (name === 'TimeoutError' || name === 'AbortError') throw new ClusterError('timeout', 'DCM did not answer in time')
        throw new ClusterError('unavailable', `DCM is unreachable: ${error instanceof Error ? error.message : String(error)}`)
      }
      const text = await response.text()
      let parsed: unknown
      try {
        parsed = text === '' ? {} : JSON.parse(text)
      } catch {
        parsed = undefined
      }
      if (!response.ok) {
        const fields = (parsed ?? {}) as { message?: unknown; detail?: unknown }
        const message = typeof fields.message === 'string' ? fields.message : typeof fields.detail === 'string' ? fields.detail : text.slice(0, 1000) || `DCM answered ${response.status}`
        throw new ClusterError(errorKindOf(response.status), message, response.status)
      }
      if (parsed === undefined) throw new ClusterError('unavailable', 'DCM answered with a body that is not JSON', response.status)
      return parsed as T
    })
  }

  private location(target: ClusterTarget) {
    return { resource_id: dcmResourceId(target), kube_cluster: target.environment.cluster_name, kube_namespace: target.environment.namespace }
  }

  private start(target: ClusterTarget, darwinResource: string) {
    return this.request('POST', '/resource-instance/start', { ...this.location(target), artifact_id: dcmResourceId(target), darwin_resource: darwinResource })
  }

  private async pods(target: ClusterTarget): Promise<DcmPod[]> {
    try {
      return podsOf(await this.request<unknown>('POST', '/resource-instance/status', this.location(target)))
    } catch (error) {
      // DCM answers an unknown resource with no pods; a 404 from a proxy in front of it means the same.
      if (error instanceof ClusterError && error.httpStatus === 404) return []
      throw error
    }
  }

  async apply(target: ClusterTarget, rendered: RenderedServe, secrets?: SecretValues): Promise<ApplyResult> {
    if (!rendered.dcm) throw new ClusterError('rejected', 'DCM has no chart for this serve type; use the kubernetes driver')
    const { darwinResource, version, passwordEnv } = rendered.dcm
    // The MLflow password reaches the app only by value through the chart (envs); it is added here, never stored.
    const password = passwordEnv && secrets?.mlflowPassword !== undefined ? { [passwordEnv]: secrets.mlflowPassword } : {}
    const values = { ...rendered.dcm.values, envs: { ...(rendered.dcm.values.envs as Record<string, string>), ...password } }
    const artifactId = dcmResourceId(target)
    const running = new Set((await this.pods(target)).map((pod) => templateOf(pod.name)))
    try {
      await this.request('POST', '/resource-instance/', { darwin_resource: darwinResource, values, version, artifact_id: artifactId })
    } catch (error) {
      if (!(error instanceof ClusterError && error.kind === 'conflict')) throw error
      await this.request('PATCH', '/resource-instance/values', { values, artifact_id: artifactId, darwin_resource: darwinResource })
    }
    await this.start(target, darwinResource)
    this.previousTemplates.set(artifactId, running)
    return { applied: [`${darwinResource}/${artifactId}`], pruned: [] }
  }

  async remove(target: ClusterTarget): Promise<void> {
    this.previousTemplates.delete(dcmResourceId(target))
    try {
      await this.request('POST', '/resource-instance/stop', this.location(target))
    } catch (error) {
      if (!(error instanceof ClusterError && error.httpStatus === 404)) throw error
    }
  }

  async status(target: ClusterTarget): Promise<RolloutStatus> {
    const id = dcmResourceId(target)
    const status = rolloutOfPods(await this.pods(target), this.previousTemplates.get(id))
    if (status.phase === 'complete') this.previousTemplates.delete(id)
    return status
  }

  /** DCM_URL always names a DCM (the original's default is http://localhost:8080); whether it answers is a 502. */
  ensureConfigured(): void {}

  availability(): DriverAvailability {
    return { usable: true, detail: `DCM at ${new URL(this.options.url).origin} (DCM_URL)` }
  }

  async setAutoscalingBounds(target: ClusterTarget, bounds: { min: number; max: number }): Promise<void> {
    if (!Number.isInteger(bounds.min) || bounds.min < 1 || bounds.max < bounds.min) {
      throw new ClusterError('rejected', `invalid replica bounds ${bounds.min}..${bounds.max}`)
    }
    await this.request('PATCH', '/resource-instance/values', {
      values: { replicaCount: bounds.min, hpa: { maxReplicas: bounds.max } },
      artifact_id: dcmResourceId(target),
      darwin_resource: DCM_CHART,
    })
    await this.start(target, DCM_CHART)
  }

  // DCM installs one chart release per serve and environment: there is no second Deployment beside it.
  // Canaries are refused before anything is recorded (DCM_REFUSALS.canary); these answer the same if reached.

  async applyObjects(): Promise<void> {
    throw new ClusterError('rejected', DCM_REFUSALS.canary)
  }

  async removeObjects(): Promise<void> {
    throw new ClusterError('rejected', DCM_REFUSALS.canary)
  }

  async workload(): Promise<WorkloadStatus | undefined> {
    throw new ClusterError('rejected', DCM_REFUSALS.canary)
  }
}
