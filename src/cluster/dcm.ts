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
 * - status: `POST /resource-instance/status` → `data.status`, mapped onto a rollout phase.
 * - setAutoscalingBounds: `PATCH /resource-instance/values` with only `replicaCount` (= min) and
 *   `hpa.maxReplicas` (= max) — DCM merges values — then `start` to upgrade the release.
 * The resource id is `{env}-{serve}`. Requests time out and are retried like the Kubernetes driver's.
 */
import { DCM_CHART, type RenderedServe } from '../render'
import {
  type ApplyResult,
  ClusterError,
  type ClusterDriver,
  type ClusterTarget,
  type DriverAvailability,
  errorKindOf,
  type RetryPolicy,
  type RolloutPhase,
  type RolloutStatus,
  withRetries,
} from './driver'

export interface DcmDriverOptions {
  url: string
  requestTimeoutMs: number
  retry: RetryPolicy
}

/** DCM's name for a serve in an environment. */
export const dcmResourceId = (target: ClusterTarget) => `${target.environment.name}-${target.serve}`

const COMPLETE = new Set(['running', 'active', 'ready', 'deployed', 'healthy'])
const FAILED = new Set(['failed', 'error', 'crashloopbackoff', 'imagepullbackoff'])
const ABSENT = new Set(['not_found', 'notfound', 'inactive', 'stopped', 'deleted', 'uninstalled'])

function phaseOf(status: string): RolloutPhase {
  const normalised = status.trim().toLowerCase().replace(/[\s-]+/g, '_')
  if (COMPLETE.has(normalised)) return 'complete'
  if (FAILED.has(normalised)) return 'failed'
  if (ABSENT.has(normalised)) return 'absent'
  return 'progressing'
}

export class DcmDriver implements ClusterDriver {
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

  async apply(target: ClusterTarget, rendered: RenderedServe): Promise<ApplyResult> {
    if (!rendered.dcm) throw new ClusterError('rejected', 'DCM has no chart for this serve type; use the kubernetes driver')
    const { darwinResource, version, values } = rendered.dcm
    const artifactId = dcmResourceId(target)
    try {
      await this.request('POST', '/resource-instance/', { darwin_resource: darwinResource, values, version, artifact_id: artifactId })
    } catch (error) {
      if (!(error instanceof ClusterError && error.kind === 'conflict')) throw error
      await this.request('PATCH', '/resource-instance/values', { values, artifact_id: artifactId, darwin_resource: darwinResource })
    }
    await this.start(target, darwinResource)
    return { applied: [`${darwinResource}/${artifactId}`], pruned: [] }
  }

  async remove(target: ClusterTarget): Promise<void> {
    try {
      await this.request('POST', '/resource-instance/stop', this.location(target))
    } catch (error) {
      if (!(error instanceof ClusterError && error.httpStatus === 404)) throw error
    }
  }

  async status(target: ClusterTarget): Promise<RolloutStatus> {
    let status: string
    try {
      const answer = await this.request<{ data?: { status?: unknown } }>('POST', '/resource-instance/status', this.location(target))
      status = typeof answer.data?.status === 'string' ? answer.data.status : ''
    } catch (error) {
      if (!(error instanceof ClusterError && error.httpStatus === 404)) throw error
      status = 'not_found'
    }
    const phase = status === '' ? 'absent' : phaseOf(status)
    // DCM reports one word, not replica counts.
    return {
      phase,
      desiredReplicas: 0,
      updatedReplicas: 0,
      readyReplicas: 0,
      availableReplicas: 0,
      conditions: status === '' ? [] : [{ type: 'DcmStatus', status }],
      ...(phase === 'failed' ? { failureReason: status } : {}),
    }
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
}
