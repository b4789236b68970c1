/**
 * What a revision is made of, typed: the artifact, the deployment config and the infra config frozen
 * into its row. The infra snapshot uses the seed's field names and maps to and from the infra_configs
 * columns here, so a rollback can restore the config it runs.
 */
import { sortKeys } from '../../render'
import type { ApiInfraSnapshot, DeploymentConfig, InfraConfigRow, InfraSnapshot, ServeRow, WorkflowServeConfig } from '../../db/schema'

export interface RevisionInputs {
  artifactVersion: string
  image: string
  deploymentConfig: DeploymentConfig
  infraSnapshot: InfraSnapshot
}

/** The infra_configs columns of one kind of config; the other kind's columns are cleared. */
export type InfraColumns = Pick<
  InfraConfigRow,
  'backendType' | 'cores' | 'memory' | 'minReplicas' | 'maxReplicas' | 'nodeCapacityType' | 'targetCpuUtilization' | 'additionalHosts' | 'workflowConfig'
>

export const DEFAULT_TARGET_CPU_UTILIZATION = 70

export const isApiSnapshot = (snapshot: InfraSnapshot): snapshot is ApiInfraSnapshot => 'backend_type' in snapshot

export function infraColumnsOf(snapshot: InfraSnapshot): InfraColumns {
  if (!isApiSnapshot(snapshot)) {
    return { backendType: null, cores: null, memory: null, minReplicas: null, maxReplicas: null, nodeCapacityType: null, targetCpuUtilization: null, additionalHosts: null, workflowConfig: snapshot }
  }
  return {
    backendType: snapshot.backend_type,
    cores: snapshot.cores,
    memory: snapshot.memory,
    minReplicas: snapshot.min_replicas,
    maxReplicas: snapshot.max_replicas,
    nodeCapacityType: snapshot.node_capacity_type,
    targetCpuUtilization: snapshot.target_cpu_utilization,
    additionalHosts: snapshot.additional_hosts,
    workflowConfig: null,
  }
}

/** An api serve's stored config, or null when its columns are incomplete (a row of the other kind). */
export function apiSnapshotOf(row: InfraColumns): ApiInfraSnapshot | null {
  const { backendType, cores, memory, minReplicas, maxReplicas, nodeCapacityType, targetCpuUtilization, additionalHosts } = row
  if (backendType === null || cores === null || memory === null || minReplicas === null || maxReplicas === null || nodeCapacityType === null) return null
  return {
    backend_type: backendType,
    cores,
    memory,
    min_replicas: minReplicas,
    max_replicas: maxReplicas,
    node_capacity_type: nodeCapacityType,
    target_cpu_utilization: targetCpuUtilization ?? DEFAULT_TARGET_CPU_UTILIZATION,
    additional_hosts: additionalHosts ?? [],
  }
}

/** The serve's config in this row, as a revision freezes it. */
export function infraSnapshotOf(serve: Pick<ServeRow, 'type' | 'name'>, row: InfraColumns): InfraSnapshot {
  const snapshot: InfraSnapshot | null = serve.type === 'workflow' ? (row.workflowConfig as WorkflowServeConfig | null) : apiSnapshotOf(row)
  if (!snapshot) throw new Error(`the infra config of ${serve.type} serve ${serve.name} lacks its ${serve.type} columns`)
  return snapshot
}

/** Whether two snapshots hold the same config (key order aside). */
export function sameSnapshot(a: InfraSnapshot, b: InfraSnapshot): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b))
}
