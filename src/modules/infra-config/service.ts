import type { Db } from '../../db/client'
import type { DeploymentRow, EnvironmentRow, InfraConfigRow, InfraSnapshot, ServeRow } from '../../db/schema'
import { apiSnapshotOf, type InfraColumns, infraColumnsOf, infraSnapshotOf } from '../placement/revision-inputs'
import { infraConfigRow, infraConfigRowsOf, insertInfraConfig } from '../placement/service'
import { AppError, alreadyExists, type FieldError, invalid, isDuplicateKey } from '../../lib/errors'
import type { AuditContext } from '../../lib/audit'
import { recordAudit } from '../../lib/audit-log'
import { findEnvironment } from '../environment/service'
import { findServe } from '../serve/service'
import { DEFAULT_TARGET_CPU_UTILIZATION, InfraConfigModel } from './model'

type ApiConfig = InfraConfigModel.ApiServeInfraConfig
type WorkflowConfig = InfraConfigModel.WorkflowServeConfig

/** A PATCH's merged, validated config, handed to whoever stores it (the deployment module). */
export interface InfraConfigChange {
  /** Who changed it: a redeploy it causes is theirs. */
  audit: AuditContext
  serve: ServeRow
  environment: EnvironmentRow
  next: InfraColumns
  /** What the request asked for, for the audit entry. */
  summary: Record<string, unknown>
}

export interface InfraConfigHooks {
  /**
   * Stores the changed config and, where the serve is deployed, starts the revision that carries it,
   * atomically (the placement module's infra PATCH command). Answers that revision, if any.
   */
  commitChange(change: InfraConfigChange): Promise<{ revision: DeploymentRow | null }>
}

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

export function toInfraConfig(row: InfraConfigRow, serve: ServeRow, envName: string): InfraConfigModel.InfraConfig {
  const api = serve.type === 'api' ? apiSnapshotOf(row) : null
  return {
    serve_name: serve.name,
    env: envName,
    serve_type: serve.type,
    api_serve_infra_config: api,
    workflow_serve_config: serve.type === 'workflow' ? row.workflowConfig : null,
    // The original's shape, beside ours: its clients read data.backend_type and data.fast_api_config.
    ...(api
      ? {
          backend_type: api.backend_type,
          fast_api_config: {
            cores: api.cores,
            memory: api.memory,
            min_replicas: api.min_replicas,
            max_replicas: api.max_replicas,
            node_capacity_type: api.node_capacity_type,
            target_cpu_utilization: api.target_cpu_utilization,
          },
        }
      : {}),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

async function findRow(db: Db, serve: ServeRow, environment: EnvironmentRow): Promise<InfraConfigRow> {
  const row = await infraConfigRow(db, { serveId: serve.id, environmentId: environment.id })
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
  return (await infraConfigRowsOf(db, serve.id)).map(({ row, envName }) => toInfraConfig(row, serve, envName))
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
  let snapshot: InfraSnapshot
  // The create schema requires every field but the defaulted ones, in both api forms.
  if (given.kind === 'api') {
    const config = { target_cpu_utilization: DEFAULT_TARGET_CPU_UTILIZATION, additional_hosts: [], ...given.value } as ApiConfig
    checkApiConfig(config, given.pathOf)
    snapshot = config
  } else {
    snapshot = given.value as WorkflowConfig
    checkWorkflowConfig(snapshot)
  }
  try {
    await db.transaction(async (tx) => {
      await insertInfraConfig(tx, { serveId: serve.id, environmentId: environment.id }, infraColumnsOf(snapshot))
      await recordAudit(tx, audit, { resourceType: 'serve', resourceName: serve.name, statusCode: 201, summary: { env: environment.name, ...body } })
    })
  } catch (error) {
    if (isDuplicateKey(error)) {
      throw alreadyExists(`Infra config of serve ${serve.name} for environment ${environment.name} already exists; PATCH it instead`)
    }
    throw error
  }
  return toInfraConfig(await findRow(db, serve, environment), serve, environment.name)
}

/** The stored config with a PATCH body's fields merged in, validated as a whole. */
export function mergedInfraConfig(serve: ServeRow, row: InfraConfigRow, body: InfraConfigModel.UpdateBody): InfraSnapshot {
  const given = givenConfig(serve, body)
  const stored = infraSnapshotOf(serve, row)
  if (given.kind === 'api') {
    const merged: ApiConfig = { ...(stored as ApiConfig), ...definedEntries(given.value) }
    checkApiConfig(merged, given.pathOf)
    return merged
  }
  const workflow = stored as WorkflowConfig
  const { head_node_config: head, ...rest } = given.value
  const merged: WorkflowConfig = { ...workflow, ...definedEntries(rest), head_node_config: { ...workflow.head_node_config, ...definedEntries(head ?? {}) } }
  checkWorkflowConfig(merged)
  return merged
}

/**
 * Merges the given fields into the stored config, validates the result, and hands it to the hook,
 * which stores it and redeploys a deployed serve with it in one step. A PATCH that changes nothing
 * starts nothing. Answers the config and the revision it started (or null).
 */
export async function updateInfraConfig(
  db: Db,
  audit: AuditContext,
  hooks: InfraConfigHooks,
  serveName: string,
  envName: string,
  body: InfraConfigModel.UpdateBody,
): Promise<InfraConfigModel.InfraConfig & { started_revision: number | null }> {
  const serve = await findServe(db, serveName)
  const environment = await findEnvironment(db, envName)
  const next = mergedInfraConfig(serve, await findRow(db, serve, environment), body)
  const { revision } = await hooks.commitChange({ audit, serve, environment, next: infraColumnsOf(next), summary: { env: environment.name, ...body } })
  return { ...toInfraConfig(await findRow(db, serve, environment), serve, environment.name), started_revision: revision?.revision ?? null }
}
