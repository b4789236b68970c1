/** The cluster drivers of this process, one per kind, picked per environment (`cluster_driver`). */
import type { KubeConfig } from '@kubernetes/client-node'
import type { Config } from '../config'
import { DcmDriver } from './dcm'
import type { ClusterDriver, ClusterTarget, DriverAvailability } from './driver'
import { KubernetesDriver } from './kubernetes'

export type { ApplyResult, ClusterDriver, ClusterTarget, DriverAvailability, RolloutStatus, SecretValues } from './driver'
export { ClusterError } from './driver'

export interface ClusterDrivers {
  /** The driver for the target's environment (`kubernetes` unless the environment says `dcm`). */
  for(target: ClusterTarget): ClusterDriver
  /** Which drivers can be used with their default settings, and how (for /readyz and the start-up log). */
  availability(): Record<'kubernetes' | 'dcm', DriverAvailability>
}

export function createClusterDrivers(
  config: Pick<Config, 'cluster' | 'dcmUrl'>,
  overrides: { kubeConfigFor?: (context: string) => KubeConfig } = {},
): ClusterDrivers {
  const retry = { attempts: config.cluster.requestAttempts, backoffMs: config.cluster.retryBackoffMs }
  const kubernetes = new KubernetesDriver({ requestTimeoutMs: config.cluster.requestTimeoutMs, retry, ...overrides })
  const dcm = new DcmDriver({ url: config.dcmUrl, requestTimeoutMs: config.cluster.requestTimeoutMs, retry })
  return {
    for: (target) => (target.environment.cluster_driver === 'dcm' ? dcm : kubernetes),
    availability: () => ({ kubernetes: kubernetes.availability(), dcm: dcm.availability() }),
  }
}
