/**
 * Write-time refusal of what the environment's cluster driver cannot install, so that a stored infra
 * config is always deployable: in an environment with cluster_driver dcm, DCM installs the chart
 * darwin-fastapi-serve, which has no template for a workflow serve or a Ray serve, and no Istio route.
 * Checked before the config is stored (POST) or merged and stored (PATCH).
 */
import type { Db } from '../../db/client'
import type { EnvironmentRow } from '../../db/schema'
import { AppError, type FieldError, fieldPath, invalid } from '../../lib/errors'
import { baseName, CRONJOB_NAME_MAX, DCM_REFUSALS, RAYSERVICE_NAME_MAX } from '../../render'
import { findEnvironment } from '../environment/service'
import { infraConfigRow, infraConfigRowsOf, lockKey } from '../placement/service'
import { findServe, listServes } from '../serve/service'
import type { InfraConfigModel } from './model'

export interface DriverFitSettings {
  /** Why a workflow schedule is not a cron expression that runs, or undefined (the scaling module's parser, given by the app). */
  scheduleProblem?: (schedule: string) => string | undefined
  /** ENABLE_ISTIO: serves are routed by an Istio VirtualService, which DCM's chart cannot render. */
  istio: boolean
}

/** Throws 422 (a schedule that never runs, a derived name past its limit, the field DCM cannot install) or 409 DCM_UNSUPPORTED (ENABLE_ISTIO); unknown names are left to the service's 404. */
export async function checkDriverFit(
  db: Db,
  settings: DriverFitSettings,
  serveName: string,
  envName: string,
  body: InfraConfigModel.CreateBody | InfraConfigModel.UpdateBody,
): Promise<void> {
  const schedule = body.workflow_serve_config?.schedule
  if (schedule !== undefined && settings.scheduleProblem) {
    const problem = settings.scheduleProblem(schedule)
    if (problem) throw invalid([{ path: '/workflow_serve_config/schedule', message: problem }])
  }
  const found = await Promise.all([findServe(db, serveName), findEnvironment(db, envName)]).catch(() => undefined)
  if (!found) return
  const [serve, environment] = found
  const given = body.api_serve_infra_config?.backend_type ?? body.api_serve_config?.backend_type
  const path = body.api_serve_config ? '/api_serve_config/backend_type' : '/api_serve_infra_config/backend_type'
  const stored = serve.type === 'api' ? await infraConfigRow(db, lockKey({ serve, environment })) : undefined
  const backend = given ?? stored?.backendType ?? undefined
  const minReplicas = body.api_serve_infra_config?.min_replicas ?? body.api_serve_config?.fast_api_config?.min_replicas ?? stored?.minReplicas ?? undefined
  if (serve.type === 'api' && backend !== 'ray' && minReplicas === 0) {
    // minReplicas 0 needs the HPAScaleToZero feature gate (alpha, off by default): every deploy would be refused.
    const minPath = body.api_serve_config ? '/api_serve_config/fast_api_config/min_replicas' : '/api_serve_infra_config/min_replicas'
    throw invalid([{ path: minPath, message: 'must be at least 1 for a fastapi serve: its HorizontalPodAutoscaler cannot scale to 0 (only backend_type ray may rest at 0 workers)' }])
  }
  const name = baseName(serve.name, environment.name)
  const tooLong: FieldError | undefined =
    serve.type === 'workflow' && name.length > CRONJOB_NAME_MAX
      ? { path: fieldPath('params', '/serve_name'), message: `serve ${serve.name} in environment ${environment.name} is the CronJob ${name}: ${name.length} characters, Kubernetes allows ${CRONJOB_NAME_MAX} (serve and environment names together at most ${CRONJOB_NAME_MAX - 1})` }
      : serve.type === 'api' && backend === 'ray' && name.length > RAYSERVICE_NAME_MAX
        ? { path, message: `serve ${serve.name} in environment ${environment.name} is the RayService ${name}: ${name.length} characters, KubeRay allows ${RAYSERVICE_NAME_MAX}; use a shorter serve name or backend_type fastapi` }
        : undefined
  if (tooLong) throw invalid([tooLong])
  if (environment.clusterDriver !== 'dcm') return
  const because = `Environment ${environment.name} installs serves through DCM (cluster_driver dcm)`
  if (serve.type === 'workflow') throw invalid([{ path: body.workflow_serve_config ? '/workflow_serve_config' : '/', message: DCM_REFUSALS.workflow }], because)
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
