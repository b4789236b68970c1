/**
 * The Kubernetes driver: talks to the API server with @kubernetes/client-node.
 *
 * - Apply is server-side apply (`application/apply-patch+yaml`) with the field manager
 *   `darwin-ml-serve` and `force=true`: this control plane is the source of truth for the objects it
 *   renders, so a field someone changed by hand (kubectl edit) is taken back rather than failing the
 *   deploy with a 409. Fields it does not render (e.g. a Deployment's `replicas`, owned by the HPA)
 *   are never touched.
 * - Pruning: objects carrying our managed-by/serve/environment labels that the new render no longer
 *   contains are deleted (e.g. the Ingress when Istio is turned on).
 * - Credentials: the environment's `kube_context` from the kubeconfig (KUBECONFIG or ~/.kube/config);
 *   with no context, KUBECONFIG / ~/.kube/config's current context, else the in-cluster service account.
 * - Every request has a timeout; 5xx, 429 and connection failures are retried with backoff; a 4xx is
 *   surfaced at once as a ClusterError carrying the API server's message.
 */
import {
  ApiException,
  createConfiguration,
  KubeConfig,
  type KubernetesObject as ClientObject,
  KubernetesObjectApi,
  PatchStrategy,
  ServerConfiguration,
} from '@kubernetes/client-node'
import { baseName, type KubernetesObject, LABELS, type ObjectRef, ownershipSelector, type RenderedServe, secretObject } from '../render'
import {
  type ApplyResult,
  type ClusterCalls,
  ClusterError,
  type ClusterTarget,
  errorKindOf,
  type RetryPolicy,
  type RolloutCondition,
  type RolloutStatus,
  type SecretValues,
  withRetries,
  type WorkloadStatus,
} from './driver'
import { credentialsSource, type KubeconfigLocations, noCluster, noSuchContext, notConfigured, plainHttp, processLocations, unloadable } from './kubeconfig'

export const FIELD_MANAGER = 'darwin-ml-serve'

/** Every kind a render can produce: what pruning and removal look for. */
const MANAGED_KINDS = [
  { apiVersion: 'v1', kind: 'Secret' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress' },
  { apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService' },
  { apiVersion: 'ray.io/v1', kind: 'RayService' },
  { apiVersion: 'batch/v1', kind: 'CronJob' },
] as const

/** Container waiting reasons that mean the rollout will not finish by itself. */
const POD_FAILURE_REASONS = new Set(['ImagePullBackOff', 'ErrImagePull', 'CrashLoopBackOff', 'CreateContainerConfigError', 'InvalidImageName', 'CreateContainerError'])

export interface KubernetesDriverOptions {
  requestTimeoutMs: number
  retry: RetryPolicy
  /** Where the credentials are (default: this process's KUBECONFIG, home, service account). */
  locations?: KubeconfigLocations
  /** The credentials for a `kube_context` ('' = default) instead; tests point this at a fake API server. */
  kubeConfigFor?: (context: string) => KubeConfig
}

/**
 * Credentials for an environment: its kubeconfig context, else KUBECONFIG/~/.kube/config's current
 * context, else the in-cluster service account. Where there are none, client-node would fall back to
 * http://localhost:8080 and fail at the first request with a message about TLS; this refuses at once
 * with what to set instead.
 */
export function loadKubeConfig(context: string, where: KubeconfigLocations = processLocations()): KubeConfig {
  const source = credentialsSource(where)
  if (source === undefined) throw notConfigured()
  const kc = new KubeConfig()
  try {
    if (source.kind === 'in-cluster') kc.loadFromCluster()
    else {
      const [first, ...rest] = source.files
      kc.loadFromFile(first as string)
      for (const file of rest) {
        const more = new KubeConfig()
        more.loadFromFile(file)
        // As kubectl: the first file's current-context wins (client-node's default takes the last).
        kc.mergeConfig(more, true)
      }
    }
  } catch (error) {
    throw unloadable(source.label, error)
  }
  if (context !== '') {
    if (!kc.getContextObject(context)) throw noSuchContext(source.label, context)
    kc.setCurrentContext(context)
  }
  return kc
}

/** The API server of a kubeconfig's current context, refused when client-node could never call it. */
function apiServerOf(kc: KubeConfig, context: string): string {
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw noCluster(context || kc.getCurrentContext())
  if (cluster.server.startsWith('http://') && !cluster.skipTLSVerify) throw plainHttp(cluster.name, cluster.server)
  return cluster.server
}

/** `key=value,…`: a label selector matching every label given. */
const labelSelector = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(',')

const objectId = (o: { kind?: string; metadata?: { name?: string } }) => `${o.kind}/${o.metadata?.name}`

/** The server's message from an ApiException body (a Status object, as JSON text or parsed). */
function serverMessage(body: unknown): string | undefined {
  let parsed = body
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body)
    } catch {
      return body.trim() === '' ? undefined : body.slice(0, 1000)
    }
  }
  const message = (parsed as { message?: unknown } | null)?.message
  return typeof message === 'string' ? message : undefined
}

function toClusterError(error: unknown): ClusterError {
  if (error instanceof ClusterError) return error
  if (error instanceof ApiException) {
    return new ClusterError(errorKindOf(error.code), serverMessage(error.body) ?? `the API server answered ${error.code}`, error.code)
  }
  const message = error instanceof Error ? error.message : String(error)
  // client-node's discovery found no such kind: the CRD (Istio, KubeRay) is not installed.
  if (/Unrecognized API version and kind/.test(message)) return new ClusterError('rejected', message)
  return new ClusterError('unavailable', `the API server is unreachable: ${message}`)
}

/** The Kubernetes calls; ./index.ts loads this module on the first one (whether a cluster is configured is ./kubeconfig.ts's). */
export class KubernetesDriver implements ClusterCalls {
  /** Per kube context: its client, and the context and server it was built for (loaded once). */
  private readonly connections = new Map<string, { client: KubernetesObjectApi; contextName: string; server: string }>()

  constructor(private readonly options: KubernetesDriverOptions) {}

  private connection(context: string) {
    let connection = this.connections.get(context)
    if (!connection) {
      const kc = this.options.kubeConfigFor ? this.options.kubeConfigFor(context) : loadKubeConfig(context, this.options.locations)
      const server = apiServerOf(kc, context)
      const timeoutMs = this.options.requestTimeoutMs
      // Built by hand (not kc.makeApiClient) to add the per-request timeout middleware.
      const client = new KubernetesObjectApi(
        createConfiguration({
          baseServer: new ServerConfiguration(server, {}),
          authMethods: { default: kc },
          promiseMiddleware: [
            {
              pre: async (request) => {
                // Aborts with our own error: client-node rewrites the message of what fetch throws, which
                // fails on the read-only DOMException that AbortSignal.timeout() would give.
                const controller = new AbortController()
                setTimeout(() => controller.abort(new ClusterError('timeout', `the API server did not answer within ${timeoutMs} ms`)), timeoutMs).unref()
                request.setSignal(controller.signal)
                return request
              },
              post: async (response) => response,
            },
          ],
        }),
      )
      connection = { client, contextName: kc.getCurrentContext(), server }
      this.connections.set(context, connection)
    }
    return connection
  }

  private client(target: ClusterTarget): KubernetesObjectApi {
    return this.connection(target.environment.kube_context).client
  }

  private call<T>(request: () => Promise<T>): Promise<T> {
    return withRetries(this.options.retry, async () => {
      try {
        return await request()
      } catch (error) {
        throw toClusterError(error)
      }
    })
  }

  /** Our objects of one kind for (serve, env); none when the cluster does not know the kind. */
  private async listOwned(target: ClusterTarget, apiVersion: string, kind: string): Promise<ClientObject[]> {
    const selector = labelSelector(ownershipSelector(target.serve, target.environment.name))
    try {
      const list = await this.call(() =>
        this.client(target).list(apiVersion, kind, target.environment.namespace, undefined, undefined, undefined, undefined, selector),
      )
      return list.items.map((item) => ({ ...item, apiVersion, kind }))
    } catch (error) {
      if (error instanceof ClusterError && (error.httpStatus === 404 || /Unrecognized API version and kind/.test(error.message))) return []
      throw error
    }
  }

  private async deleteIgnoringMissing(target: ClusterTarget, object: ClientObject): Promise<void> {
    try {
      await this.call(() => this.client(target).delete(object, undefined, undefined, undefined, undefined, 'Background'))
    } catch (error) {
      if (!(error instanceof ClusterError && error.httpStatus === 404)) throw error
    }
  }

  async apply(target: ClusterTarget, rendered: RenderedServe, secrets: SecretValues = {}): Promise<ApplyResult> {
    const secretObjects = rendered.managedSecrets.flatMap((secret) =>
      // Without a value, the Secret written by an earlier apply stays (and is kept from pruning).
      secrets.mlflowPassword === undefined ? [] : [secretObject(secret, secrets.mlflowPassword)],
    )
    const keep = new Set([...rendered.manifests.map(objectId), ...rendered.managedSecrets.map((s) => `Secret/${s.name}`)])
    const applied: string[] = []
    for (const object of [...secretObjects, ...rendered.manifests]) {
      // client-node fills in missing metadata on the object it is given: give it a copy.
      const body = structuredClone(object) as ClientObject
      try {
        await this.call(() => this.client(target).patch(body, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply))
      } catch (error) {
        if (error instanceof ClusterError) error.applied = applied
        throw error
      }
      applied.push(objectId(object))
    }
    const pruned: string[] = []
    for (const { apiVersion, kind } of MANAGED_KINDS) {
      for (const existing of await this.listOwned(target, apiVersion, kind)) {
        if (keep.has(objectId(existing))) continue
        await this.deleteIgnoringMissing(target, existing)
        pruned.push(objectId(existing))
      }
    }
    return { applied, pruned }
  }

  async applyObjects(target: ClusterTarget, objects: KubernetesObject[]): Promise<void> {
    for (const object of objects) {
      const body = structuredClone(object) as ClientObject
      await this.call(() => this.client(target).patch(body, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply))
    }
  }

  async removeObjects(target: ClusterTarget, refs: ObjectRef[]): Promise<void> {
    for (const ref of refs) {
      await this.deleteIgnoringMissing(target, { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: target.environment.namespace } })
    }
  }

  async workload(target: ClusterTarget, name: string): Promise<WorkloadStatus | undefined> {
    const deployment = await this.readOrUndefined<DeploymentLike>(target, 'apps/v1', 'Deployment', name)
    if (!deployment) return undefined
    const status = deployment.status ?? {}
    const { restarts, failureReason } = await this.podHealth(target, deployment.spec?.selector?.matchLabels ?? {})
    return {
      desiredReplicas: deployment.spec?.replicas ?? status.replicas ?? 0,
      replicas: status.replicas ?? 0,
      readyReplicas: status.readyReplicas ?? 0,
      restarts,
      ...(failureReason ? { failureReason } : {}),
    }
  }

  async remove(target: ClusterTarget): Promise<void> {
    for (const { apiVersion, kind } of MANAGED_KINDS) {
      for (const existing of await this.listOwned(target, apiVersion, kind)) await this.deleteIgnoringMissing(target, existing)
    }
  }

  private async readOrUndefined<T extends ClientObject>(target: ClusterTarget, apiVersion: string, kind: string, name = baseName(target.serve, target.environment.name)): Promise<T | undefined> {
    try {
      return (await this.call(() => this.client(target).read({ apiVersion, kind, metadata: { name, namespace: target.environment.namespace } }))) as T
    } catch (error) {
      if (error instanceof ClusterError && (error.httpStatus === 404 || /Unrecognized API version and kind/.test(error.message))) return undefined
      throw error
    }
  }

  /** The selected pods' container restarts, and the first failing container's waiting reason. */
  private async podHealth(target: ClusterTarget, labels: Record<string, string>): Promise<{ restarts: number; failureReason?: string }> {
    const pods = await this.call(() =>
      this.client(target).list<PodLike>('v1', 'Pod', target.environment.namespace, undefined, undefined, undefined, undefined, labelSelector(labels)),
    )
    let restarts = 0
    let failureReason: string | undefined
    for (const pod of pods.items) {
      for (const container of pod.status?.containerStatuses ?? []) {
        restarts += container.restartCount ?? 0
        const reason = container.state?.waiting?.reason
        if (reason && POD_FAILURE_REASONS.has(reason)) failureReason ??= reason
      }
    }
    return { restarts, ...(failureReason ? { failureReason } : {}) }
  }

  async status(target: ClusterTarget): Promise<RolloutStatus> {
    const deployment = await this.readOrUndefined<DeploymentLike>(target, 'apps/v1', 'Deployment')
    if (deployment) return this.deploymentStatus(target, deployment)
    const rayService = await this.readOrUndefined<RayServiceLike>(target, 'ray.io/v1', 'RayService')
    if (rayService) return rayServiceStatus(rayService)
    return { phase: 'absent', desiredReplicas: 0, updatedReplicas: 0, readyReplicas: 0, availableReplicas: 0, conditions: [] }
  }

  private async deploymentStatus(target: ClusterTarget, deployment: DeploymentLike): Promise<RolloutStatus> {
    const status = deployment.status ?? {}
    const desiredReplicas = deployment.spec?.replicas ?? status.replicas ?? 0
    const conditions: RolloutCondition[] = (status.conditions ?? []).map((c) => ({
      type: c.type,
      status: c.status,
      ...(c.reason ? { reason: c.reason } : {}),
      ...(c.message ? { message: c.message } : {}),
    }))
    const counts = {
      desiredReplicas,
      updatedReplicas: status.updatedReplicas ?? 0,
      readyReplicas: status.readyReplicas ?? 0,
      availableReplicas: status.availableReplicas ?? 0,
    }
    const observed = (status.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0)
    // Conditions speak of the generation the controller last observed: a spec applied since (an automatic
    // rollback right after a failure) is not failed by its predecessor's ProgressDeadlineExceeded.
    const deadlineExceeded = observed && conditions.some((c) => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded')
    const done = observed && counts.updatedReplicas >= desiredReplicas && counts.availableReplicas >= desiredReplicas && (status.replicas ?? 0) <= desiredReplicas
    if (done) return { phase: 'complete', ...counts, conditions }
    const { failureReason: podFailure } = await this.podHealth(target, { [LABELS.instance]: baseName(target.serve, target.environment.name) })
    const failureReason = podFailure ?? (deadlineExceeded ? 'ProgressDeadlineExceeded' : undefined)
    return { phase: deadlineExceeded ? 'failed' : 'progressing', ...counts, conditions, ...(failureReason ? { failureReason } : {}) }
  }

  async setAutoscalingBounds(target: ClusterTarget, bounds: { min: number; max: number }): Promise<void> {
    if (!Number.isInteger(bounds.min) || bounds.min < 1 || bounds.max < bounds.min) {
      throw new ClusterError('rejected', `invalid replica bounds ${bounds.min}..${bounds.max}`)
    }
    const hpa = await this.readOrUndefined<ClientObject>(target, 'autoscaling/v2', 'HorizontalPodAutoscaler')
    if (hpa) {
      const patch = { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: hpa.metadata?.name, namespace: target.environment.namespace }, spec: { minReplicas: bounds.min, maxReplicas: bounds.max } }
      await this.call(() => this.client(target).patch(patch, undefined, undefined, FIELD_MANAGER, undefined, PatchStrategy.MergePatch))
      return
    }
    const rayService = await this.readOrUndefined<RayServiceLike>(target, 'ray.io/v1', 'RayService')
    const groups = rayService?.spec?.rayClusterConfig?.workerGroupSpecs
    if (!rayService || !groups) throw new ClusterError('rejected', `${baseName(target.serve, target.environment.name)} has no autoscaler to change`)
    // A merge patch replaces lists whole: send the worker groups as read, guarded by resourceVersion (409 if they changed since).
    const workerGroupSpecs = groups.map((group) => ({ ...group, minReplicas: bounds.min, maxReplicas: bounds.max }))
    const patch = {
      apiVersion: 'ray.io/v1',
      kind: 'RayService',
      metadata: { name: rayService.metadata?.name, namespace: target.environment.namespace, resourceVersion: rayService.metadata?.resourceVersion },
      spec: { rayClusterConfig: { workerGroupSpecs } },
    }
    await this.call(() => this.client(target).patch(patch, undefined, undefined, FIELD_MANAGER, undefined, PatchStrategy.MergePatch))
  }
}

function rayServiceStatus(rayService: RayServiceLike): RolloutStatus {
  const groups = rayService.spec?.rayClusterConfig?.workerGroupSpecs ?? []
  const desiredReplicas = groups.reduce((sum, g) => sum + (g.replicas ?? g.minReplicas ?? 0), 0)
  const running = rayService.status?.serviceStatus === 'Running'
  const conditions = (rayService.status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status, ...(c.reason ? { reason: c.reason } : {}) }))
  const replicas = running ? desiredReplicas : 0
  return { phase: running ? 'complete' : 'progressing', desiredReplicas, updatedReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas, conditions }
}

// The fields read back from the cluster (client-node's types make every one optional anyway).
interface Condition {
  type: string
  status: string
  reason?: string
  message?: string
}
interface DeploymentLike extends ClientObject {
  spec?: { replicas?: number; selector?: { matchLabels?: Record<string, string> } }
  status?: { replicas?: number; updatedReplicas?: number; readyReplicas?: number; availableReplicas?: number; observedGeneration?: number; conditions?: Condition[] }
}
interface PodLike extends ClientObject {
  status?: { containerStatuses?: { restartCount?: number; state?: { waiting?: { reason?: string } } }[] }
}
interface RayServiceLike extends ClientObject {
  spec?: { rayClusterConfig?: { workerGroupSpecs?: { replicas?: number; minReplicas?: number; maxReplicas?: number }[] } }
  status?: { serviceStatus?: string; conditions?: Condition[] }
}
