/**
 * Write-time refusal of what the environment's cluster driver cannot install, so that a stored infra
 * config is always deployable: in an environment with cluster_driver dcm, DCM installs the chart
 * darwin-fastapi-serve, which has no template for a workflow serve or a Ray serve, and no Istio route.
 * Checked before the config is stored (POST) or merged and stored (PATCH).
 */
import type { Db } from '../../db/client'
import type { EnvironmentRow } from '../../db/schema'
import { AppError, invalid } from '../../lib/errors'
import { DCM_REFUSALS } from '../../render'
import { findEnvironment } from '../environment/service'
import { infraConfigRow, infraConfigRowsOf, lockKey } from '../placement/service'
import { findServe, listServes } from '../serve/service'
import type { InfraConfigModel } from './model'

export interface DriverFitSettings {
  /** ENABLE_ISTIO: serves are routed by an Istio VirtualService, which DCM's chart cannot render. */
  istio: boolean
}

/** Throws 422 (the field DCM cannot install) or 409 DCM_UNSUPPORTED (ENABLE_ISTIO); unknown names are left to the service's 404. */
export async function checkDriverFit(
  db: Db,
  settings: DriverFitSettings,
  serveName: string,
  envName: string,
  body: InfraConfigModel.CreateBody | InfraConfigModel.UpdateBody,
): Promise<void> {
  const found = await Promise.all([findServe(db, serveName), findEnvironment(db, envName)]).catch(() => undefined)
  if (!found) return
  const [serve, environment] = found
  if (environment.clusterDriver !== 'dcm') return
  const because = `Environment ${environment.name} installs serves through DCM (cluster_driver dcm)`
  if (serve.type === 'workflow') throw invalid([{ path: body.workflow_serve_config ? '/workflow_serve_config' : '/', message: DCM_REFUSALS.workflow }], because)
  const given = body.api_serve_infra_config?.backend_type ?? body.api_serve_config?.backend_type
  const path = body.api_serve_config ? '/api_serve_config/backend_type' : '/api_serve_infra_config/backend_type'
  const backend = given ?? (await infraConfigRow(db, lockKey({ serve, environment })))?.backendType
  if (backend === 'ray') throw invalid([{ path, message: DCM_REFUSALS.ray }], because)
  if (settings.istio) throw new AppError(409, 'DCM_UNSUPPORTED', `${because}: ${DCM_REFUSALS.istio}`)
}

/** The serves of an environment whose infra config DCM's chart cannot install (a workflow serve, backend_type ray). */
export async function configsDcmCannotInstall(db: Db, environment: EnvironmentRow): Promise<string[]> {
  const found: string[] = []
  for (let page = 1; ; page++) {
    const { items } = await listServes(db, { page, limit: 200 })
    for (const serve of items) {
      const row = (await infraConfigRowsOf(db, serve.id)).find((r) => r.envName === environment.name)?.row
      if (!row) continue
      if (serve.type === 'workflow') found.push(`${serve.name} (a workflow serve)`)
      else if (row.backendType === 'ray') found.push(`${serve.name} (backend_type ray)`)
    }
    if (items.length < 200) return found
  }
}
