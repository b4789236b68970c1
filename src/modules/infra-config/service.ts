import { and, asc, eq } from 'drizzle-orm'
import type { Db } from '../../db/client'
import { type EnvironmentRow, environments, type InfraConfigRow, infraConfigs, type ServeRow } from '../../db/schema'
import { AppError, conflict, type FieldError, invalid, isDuplicateKey } from '../../lib/errors'
import type { AuditContext } from '../../lib/audit'
import { recordAudit } from '../../lib/audit-log'
import { findEnvironment } from '../environment/service'
import { findServe } from '../serve/service'
import { DEFAULT_TARGET_CPU_UTILIZATION, InfraConfigModel } from './model'

type ApiConfig = InfraConfigModel.ApiServeInfraConfig
type WorkflowConfig = InfraConfigModel.WorkflowServeConfig

/** What a PATCH of an infra config hands to whoever must react (the deployment module redeploys). */
export interface InfraConfigChange {
  /** Who changed it: a redeploy it causes is theirs. */
  audit: AuditContext
  serve: ServeRow
  environment: EnvironmentRow
  infraConfig: InfraConfigModel.InfraConfig
}

export interface InfraConfigHooks {
  /** Called after a PATCH is committed; its error is the PATCH's error (the change stays saved). */
  onInfraConfigChanged(change: InfraConfigChange): Promise<void>
}

export const noInfraConfigHooks: InfraConfigHooks = { onInfraConfigChanged: async () => {} }

/** The config given in a body, in the seed's flat shape, with the body path of each field for errors. */
type GivenConfig =
  | { kind: 'api'; value: InfraConfigModel.PartialApiServeInfraConfig; pathOf(field: keyof ApiConfig): string }
  | { kind: 'workflow'; value: InfraConfigModel.PartialWorkflowServeConfig }

const WORKFLOW_PATH = '/workflow_serve_config'

function givenConfig(serve: ServeRow, body: InfraConfigModel.CreateBody | InfraConfigModel.UpdateBody): GivenConfig {
  const given = (['api_serve_infra_config', 'api_serve_config', 'workflow_serve_config'] as const).filter((key) => body[key] !== undefined)
  const expected = serve.type === 'api' ? 'api_serve_infra_config (or api_serve_config)' : 'workflow_serve_config'
  const [key] = given
  if (key === undefined || given.length > 1) {
    throw invalid([{ path: '/', message: `give exactly one of api_serve_infra_config, api_serve_config, workflow_serve_config (this ${serve.type} serve takes ${expected})` }])
  }
  if ((key === 'workflow_serve_config') !== (serve.type === 'workflow')) {
    throw invalid([{ path: `/${key}`, message: `serve ${serve.name} is a ${serve.type} serve: give ${expected}` }], `Wrong config kind for a ${serve.type} serve`)
  }
  if (body.workflow_serve_config) return { kind: 'workflow', value: body.workflow_serve_config }
  if (body.api_serve_config) {
    const { fast_api_config, ...top } = body.api_serve_config
    return {
      kind: 'api',
      value: { ...top, ...fast_api_config },
      pathOf: (field) => (field === 'backend_type' || field === 'additional_hosts' ? `/api_serve_config/${field}` : `/api_serve_config/fast_api_config/${field}`),
    }
  }
  return { kind: 'api', value: body.api_serve_infra_config ?? {}, pathOf: (field) => `/api_serve_infra_config/${field}` }
}

/** The checks across fields that a schema cannot express, on the complete (merged) config. */
function checkApiConfig(config: ApiConfig, pathOf: (field: keyof ApiConfig) => string) {
  if (config.min_replicas > config.max_replicas) {
    throw invalid([{ path: pathOf('min_replicas'), message: `min_replicas (${config.min_replicas}) must not exceed max_replicas (${config.max_replicas})` }])
  }
}

function checkWorkflowConfig(config: WorkflowConfig) {
  const errors: FieldError[] = config.worker_node_config.flatMap((worker, index) =>
    worker.min_pods > worker.max_pods
      ? [{ path: `${WORKFLOW_PATH}/worker_node_config/${index}/min_pods`, message: `min_pods (${worker.min_pods}) must not exceed max_pods (${worker.max_pods})` }]
      : [],
  )
  if (errors.length > 0) throw invalid(errors)
}

function definedEntries<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}

function apiConfigOf(row: InfraConfigRow): ApiConfig | null {
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

/** The row's columns for one kind of config; the other kind's columns are cleared. */
function toColumns(config: { kind: 'api'; value: ApiConfig } | { kind: 'workflow'; value: WorkflowConfig }) {
  if (config.kind === 'workflow') {
    return {
      backendType: null,
      cores: null,
      memory: null,
      minReplicas: null,
      maxReplicas: null,
      nodeCapacityType: null,
      targetCpuUtilization: null,
      additionalHosts: null,
      workflowConfig: config.value,
    }
  }
  const api = config.value
  return {
    backendType: api.backend_type,
    cores: api.cores,
    memory: api.memory,
    minReplicas: api.min_replicas,
    maxReplicas: api.max_replicas,
    nodeCapacityType: api.node_capacity_type,
    targetCpuUtilization: api.target_cpu_utilization,
    additionalHosts: api.additional_hosts,
    workflowConfig: null,
  }
}

export function toInfraConfig(row: InfraConfigRow, serve: ServeRow, envName: string): InfraConfigModel.InfraConfig {
  return {
    serve_name: serve.name,
    env: envName,
    serve_type: serve.type,
    api_serve_infra_config: serve.type === 'api' ? apiConfigOf(row) : null,
    workflow_serve_config: serve.type === 'workflow' ? row.workflowConfig : null,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

async function findRow(db: Db, serve: ServeRow, environment: EnvironmentRow): Promise<InfraConfigRow> {
  const [row] = await db
    .select()
    .from(infraConfigs)
    .where(and(eq(infraConfigs.serveId, serve.id), eq(infraConfigs.environmentId, environment.id)))
    .limit(1)
  if (!row) throw new AppError(404, 'NOT_FOUND', `Infra config of serve ${serve.name} for environment ${environment.name} not found`)
  return row
}

export async function findInfraConfig(db: Db, serveName: string, envName: string): Promise<InfraConfigModel.InfraConfig> {
  const serve = await findServe(db, serveName)
  const environment = await findEnvironment(db, envName)
  return toInfraConfig(await findRow(db, serve, environment), serve, environment.name)
}

/** Every environment's infra config of a serve, ordered by environment name. */
export async function listInfraConfigsOf(db: Db, serve: ServeRow): Promise<InfraConfigModel.InfraConfig[]> {
  const rows = await db
    .select({ config: infraConfigs, envName: environments.name })
    .from(infraConfigs)
    .innerJoin(environments, eq(environments.id, infraConfigs.environmentId))
    .where(eq(infraConfigs.serveId, serve.id))
    .orderBy(asc(environments.name))
  return rows.map(({ config, envName }) => toInfraConfig(config, serve, envName))
}

export async function listInfraConfigs(db: Db, serveName: string): Promise<InfraConfigModel.InfraConfig[]> {
  return listInfraConfigsOf(db, await findServe(db, serveName))
}

export async function createInfraConfig(
  db: Db,
  audit: AuditContext,
  serveName: string,
  envName: string,
  body: InfraConfigModel.CreateBody,
): Promise<InfraConfigModel.InfraConfig> {
  const serve = await findServe(db, serveName)
  const environment = await findEnvironment(db, envName)
  const given = givenConfig(serve, body)
  let columns: ReturnType<typeof toColumns>
  // The create schema requires every field but the defaulted ones, in both api forms.
  if (given.kind === 'api') {
    const config = { target_cpu_utilization: DEFAULT_TARGET_CPU_UTILIZATION, additional_hosts: [], ...given.value } as ApiConfig
    checkApiConfig(config, given.pathOf)
    columns = toColumns({ kind: 'api', value: config })
  } else {
    const config = given.value as WorkflowConfig
    checkWorkflowConfig(config)
    columns = toColumns({ kind: 'workflow', value: config })
  }
  try {
    await db.transaction(async (tx) => {
      await tx.insert(infraConfigs).values({ serveId: serve.id, environmentId: environment.id, ...columns })
      await recordAudit(tx, audit, { resourceType: 'serve', resourceName: serve.name, statusCode: 201, summary: { env: environment.name, ...body } })
    })
  } catch (error) {
    if (isDuplicateKey(error)) {
      throw conflict(`Infra config of serve ${serve.name} for environment ${environment.name} already exists; PATCH it instead`, 'ALREADY_EXISTS')
    }
    throw error
  }
  return toInfraConfig(await findRow(db, serve, environment), serve, environment.name)
}

/** Merges the given fields into the stored config, validates the result, saves it, then calls the hook. */
export async function updateInfraConfig(
  db: Db,
  audit: AuditContext,
  hooks: InfraConfigHooks,
  serveName: string,
  envName: string,
  body: InfraConfigModel.UpdateBody,
): Promise<InfraConfigModel.InfraConfig> {
  const serve = await findServe(db, serveName)
  const environment = await findEnvironment(db, envName)
  const given = givenConfig(serve, body)
  const row = await findRow(db, serve, environment)
  const stored = toInfraConfig(row, serve, environment.name)
  let columns: ReturnType<typeof toColumns>
  if (given.kind === 'api') {
    if (!stored.api_serve_infra_config) throw new Error(`infra config ${row.id} of api serve ${serve.name} has no api columns`)
    const merged: ApiConfig = { ...stored.api_serve_infra_config, ...definedEntries(given.value) }
    checkApiConfig(merged, given.pathOf)
    columns = toColumns({ kind: 'api', value: merged })
  } else {
    if (!stored.workflow_serve_config) throw new Error(`infra config ${row.id} of workflow serve ${serve.name} has no workflow_config`)
    const { head_node_config: head, ...rest } = given.value
    const merged: WorkflowConfig = {
      ...stored.workflow_serve_config,
      ...definedEntries(rest),
      head_node_config: { ...stored.workflow_serve_config.head_node_config, ...definedEntries(head ?? {}) },
    }
    checkWorkflowConfig(merged)
    columns = toColumns({ kind: 'workflow', value: merged })
  }
  await db.transaction(async (tx) => {
    await tx.update(infraConfigs).set(columns).where(eq(infraConfigs.id, row.id))
    await recordAudit(tx, audit, { resourceType: 'serve', resourceName: serve.name, statusCode: 200, summary: { env: environment.name, ...body } })
  })
  const infraConfig = toInfraConfig(await findRow(db, serve, environment), serve, environment.name)
  await hooks.onInfraConfigChanged({ audit, serve, environment, infraConfig })
  return infraConfig
}
