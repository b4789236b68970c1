/** The cluster drivers of this process, one per kind, picked per environment (`cluster_driver`). */
import type { Config } from '../config'
import type { KubernetesObject, ObjectRef, RenderedServe } from '../render'
import { DcmDriver } from './dcm'
import type { ClusterCalls, ClusterDriver, ClusterTarget, DriverAvailability, RetryPolicy, SecretValues } from './driver'
import { connectionOf, type KubeconfigLocations, kubernetesAvailability, processLocations } from './kubeconfig'

export type { ApplyResult, ClusterDriver, ClusterTarget, DriverAvailability, RolloutStatus, SecretValues, WorkloadStatus } from './driver'
export { ClusterError } from './driver'

export interface ClusterDrivers {
  /** The driver for the target's environment (`kubernetes` unless the environment says `dcm`). */
  for(target: ClusterTarget): ClusterDriver
  /** Which drivers can be used with their default settings, and how (for /readyz and the start-up log). */
  availability(): Record<'kubernetes' | 'dcm', DriverAvailability>
}

/**
 * The Kubernetes driver, with @kubernetes/client-node loaded on the first cluster call: a replica that
 * deploys nothing never pays its memory (some 45 MiB) or its share of the start-up. Whether a cluster
 * is configured — readiness, and the refusal before a change is recorded — reads the kubeconfig
 * without it (./kubeconfig.ts).
 */
class KubernetesClusterDriver implements ClusterDriver {
  private calls?: Promise<ClusterCalls>

  constructor(private readonly options: { requestTimeoutMs: number; retry: RetryPolicy; locations: KubeconfigLocations }) {}

  private load(): Promise<ClusterCalls> {
    this.calls ??= import('./kubernetes').then(({ KubernetesDriver }) => new KubernetesDriver(this.options))
    return this.calls
  }

  async apply(target: ClusterTarget, rendered: RenderedServe, secrets?: SecretValues) {
    return (await this.load()).apply(target, rendered, secrets)
  }

  async remove(target: ClusterTarget) {
    return (await this.load()).remove(target)
  }

  async status(target: ClusterTarget) {
    return (await this.load()).status(target)
  }

  async setAutoscalingBounds(target: ClusterTarget, bounds: { min: number; max: number }) {
    return (await this.load()).setAutoscalingBounds(target, bounds)
  }

  async applyObjects(target: ClusterTarget, objects: KubernetesObject[]) {
    return (await this.load()).applyObjects(target, objects)
  }

  async removeObjects(target: ClusterTarget, refs: ObjectRef[]) {
    return (await this.load()).removeObjects(target, refs)
  }

  async workload(target: ClusterTarget, name: string) {
    return (await this.load()).workload(target, name)
  }

  ensureConfigured(target: ClusterTarget): void {
    connectionOf(target.environment.kube_context, this.options.locations)
  }

  availability(): DriverAvailability {
    return kubernetesAvailability(this.options.locations)
  }
}

/** `kubeconfigLocations`: where the Kubernetes credentials are (default: KUBECONFIG, ~/.kube/config, the service account). */
export function createClusterDrivers(config: Pick<Config, 'cluster' | 'dcmUrl'>, overrides: { kubeconfigLocations?: KubeconfigLocations } = {}): ClusterDrivers {
  const retry = { attempts: config.cluster.requestAttempts, backoffMs: config.cluster.retryBackoffMs }
  const kubernetes = new KubernetesClusterDriver({ requestTimeoutMs: config.cluster.requestTimeoutMs, retry, locations: overrides.kubeconfigLocations ?? processLocations() })
  const dcm = new DcmDriver({ url: config.dcmUrl, requestTimeoutMs: config.cluster.requestTimeoutMs, retry })
  return {
    for: (target) => (target.environment.cluster_driver === 'dcm' ? dcm : kubernetes),
    availability: () => ({ kubernetes: kubernetes.availability(), dcm: dcm.availability() }),
  }
}
