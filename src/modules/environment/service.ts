import { asc, count, eq, like, sql } from 'drizzle-orm'
import type { Db } from '../../db/client'
import { preparedPerHandle } from '../../db/prepared'
import type { AuditContext } from '../../lib/audit'
import { recordAudit } from '../../lib/audit-log'
import { type EnvironmentRow, environments } from '../../db/schema'
import { AppError, alreadyExists, isDuplicateKey, isStillReferenced, notFound } from '../../lib/errors'
import { escapeLike, type Page, type PageRequest, pageWindow } from '../../lib/pagination'
import { DCM_REFUSALS } from '../../render'
import type { EnvironmentModel } from './model'

/** What DCM's chart must be able to install for an environment to use cluster_driver dcm. */
export interface DriverSettings {
  /** ENABLE_ISTIO (the service's setting): DCM's chart has no Istio route. */
  istio: boolean
  /** The serves whose infra config in this environment DCM cannot install (given by the infra-config module). */
  configsDcmCannotInstall?: (environment: EnvironmentRow) => Promise<string[]>
}

const dcmUnsupported = (message: string) => new AppError(409, 'DCM_UNSUPPORTED', message)

/** Refuses (409) cluster_driver dcm where DCM's chart could not install what the environment is for. */
async function checkDriver(settings: DriverSettings, driver: string | undefined, existing?: EnvironmentRow) {
  if (driver !== 'dcm') return
  if (settings.istio) throw dcmUnsupported(`cluster_driver dcm: ${DCM_REFUSALS.istio}`)
  if (!existing || existing.clusterDriver === 'dcm' || !settings.configsDcmCannotInstall) return
  const blocking = await settings.configsDcmCannotInstall(existing)
  if (blocking.length > 0) {
    throw dcmUnsupported(
      `cluster_driver dcm: environment ${existing.name} has infra configs that DCM's chart darwin-fastapi-serve cannot install: ${blocking.slice(0, 10).join(', ')}${blocking.length > 10 ? ', …' : ''}. It installs FastAPI serves only`,
    )
  }
}

export function toEnvironment(row: EnvironmentRow): EnvironmentModel.Environment {
  return {
    id: row.id,
    name: row.name,
    environment_configs: {
      domain_suffix: row.domainSuffix,
      cluster_name: row.clusterName,
      namespace: row.namespace,
      security_group: row.securityGroup,
      subnets: row.subnets,
      ft_redis_url: row.ftRedisUrl,
      workflow_url: row.workflowUrl,
      cluster_driver: row.clusterDriver,
      kube_context: row.kubeContext,
    },
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

function toColumns(configs: EnvironmentModel.PartialConfigs) {
  return {
    domainSuffix: configs.domain_suffix,
    clusterName: configs.cluster_name,
    namespace: configs.namespace,
    securityGroup: configs.security_group,
    subnets: configs.subnets,
    ftRedisUrl: configs.ft_redis_url,
    workflowUrl: configs.workflow_url,
    clusterDriver: configs.cluster_driver,
    kubeContext: configs.kube_context,
  }
}

const environmentByName = preparedPerHandle((db: Db) => db.select().from(environments).where(eq(environments.name, sql.placeholder('name'))).limit(1).prepare())

export async function findEnvironment(db: Db, name: string): Promise<EnvironmentRow> {
  const [row] = await environmentByName(db).execute({ name })
  if (!row) throw notFound('Environment', name)
  return row
}

export async function createEnvironment(db: Db, audit: AuditContext, body: EnvironmentModel.CreateBody, settings: DriverSettings = { istio: false }): Promise<EnvironmentRow> {
  await checkDriver(settings, body.environment_configs.cluster_driver)
  try {
    await db.transaction(async (tx) => {
      await tx.insert(environments).values({
        name: body.name,
        ...toColumns(body.environment_configs),
        domainSuffix: body.environment_configs.domain_suffix,
        clusterName: body.environment_configs.cluster_name,
        namespace: body.environment_configs.namespace,
      })
      await recordAudit(tx, audit, { resourceType: 'environment', resourceName: body.name, statusCode: 201, summary: { environment_configs: body.environment_configs } })
    })
  } catch (error) {
    if (isDuplicateKey(error)) throw alreadyExists(`Environment with name ${body.name} already exists`)
    throw error
  }
  return findEnvironment(db, body.name)
}

export async function listEnvironments(
  db: Db,
  query: PageRequest & { name_prefix?: string },
): Promise<Page<EnvironmentRow>> {
  const { page, limit, offset } = pageWindow(query)
  const where = query.name_prefix ? like(environments.name, `${escapeLike(query.name_prefix)}%`) : undefined
  const [items, [totals]] = await Promise.all([
    db.select().from(environments).where(where).orderBy(asc(environments.name)).limit(limit).offset(offset),
    db.select({ total: count() }).from(environments).where(where),
  ])
  return { items, total: totals?.total ?? 0, page, limit }
}

/** Merges the given config keys (flat or under `environment_configs`) into the stored ones. */
export async function updateEnvironment(
  db: Db,
  audit: AuditContext,
  name: string,
  body: EnvironmentModel.UpdateBody,
  settings: DriverSettings = { istio: false },
): Promise<EnvironmentRow> {
  const { environment_configs: nested, ...flat } = body
  const given = { ...flat, ...nested }
  const changes = Object.fromEntries(Object.entries(toColumns(given)).filter(([, value]) => value !== undefined))
  const existing = await findEnvironment(db, name)
  await checkDriver(settings, given.cluster_driver, existing)
  await db.transaction(async (tx) => {
    if (Object.keys(changes).length > 0) await tx.update(environments).set(changes).where(eq(environments.id, existing.id))
    await recordAudit(tx, audit, { resourceType: 'environment', resourceName: name, statusCode: 200, summary: { environment_configs: given } })
  })
  return findEnvironment(db, name)
}

export async function deleteEnvironment(db: Db, audit: AuditContext, name: string): Promise<void> {
  const existing = await findEnvironment(db, name)
  try {
    await db.transaction(async (tx) => {
      await tx.delete(environments).where(eq(environments.id, existing.id))
      await recordAudit(tx, audit, { resourceType: 'environment', resourceName: name, statusCode: 200 })
    })
  } catch (error) {
    if (isStillReferenced(error)) {
      throw new AppError(409, 'ENVIRONMENT_IN_USE', `Environment ${name} is referenced by existing resources (infra configs or deployments)`)
    }
    throw error
  }
}
