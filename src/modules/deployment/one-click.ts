/**
 * One-click MLflow model deployment (the seed's `deploy-model`): creates or reuses the serve, its
 * infra config and an artifact on DEFAULT_RUNTIME that serves the model at `model_uri`, then
 * deploys it. Calling it again with new values updates the same serve.
 */
import { and, eq } from 'drizzle-orm'
import { MlflowClient, parseModelUri } from '../../clients/mlflow'
import { clusterTargetOf } from '../../cluster/driver'
import { artifacts, type InfraConfigRow, serves } from '../../db/schema'
import { AppError, invalid } from '../../lib/errors'
import type { AuditContext } from '../../lib/audit'
import { type ArtifactDeps, createArtifact } from '../artifact/service'
import { findEnvironment } from '../environment/service'
import { createInfraConfig, mergedInfraConfig } from '../infra-config/service'
import { sameSnapshot } from '../placement/revision-inputs'
import { infraConfigRow, lockKey } from '../placement/service'
import { createServe, findServe } from '../serve/service'
import type { DeploymentModel } from './model'
import { activeRevision, type DeploymentDeps, deployPrepared, ensureClusterConfigured, undeploy } from './service'

/** The same model URI always maps to the same artifact version. */
export function modelArtifactVersion(modelUri: string) {
  return `mlflow-${new Bun.CryptoHasher('sha256').update(modelUri).digest('hex').slice(0, 12)}`
}

export async function deployModel(deps: DeploymentDeps, artifactDeps: ArtifactDeps, audit: AuditContext, body: DeploymentModel.DeployModelBody) {
  const { db, config } = deps
  const modelUri = parseModelUri(body.model_uri)
  const environment = await findEnvironment(db, body.env)
  ensureClusterConfigured(deps.drivers, clusterTargetOf(body.serve_name, environment))
  const infra = {
    backend_type: 'fastapi' as const,
    cores: body.cores ?? 1,
    memory: body.memory ?? 2,
    min_replicas: body.min_replicas ?? 1,
    max_replicas: body.max_replicas ?? Math.max(1, body.min_replicas ?? 1),
    node_capacity_type: body.node_capacity ?? 'ondemand',
  }
  if (infra.min_replicas > infra.max_replicas) {
    throw invalid([{ path: '/min_replicas', message: `min_replicas (${infra.min_replicas}) must not exceed max_replicas (${infra.max_replicas})` }])
  }
  if (config.mlflow.trackingUri) {
    await new MlflowClient({ trackingUri: config.mlflow.trackingUri, username: config.mlflow.username, password: config.mlflow.password }).validate(modelUri)
  }

  const [existingServe] = await db.select().from(serves).where(eq(serves.name, body.serve_name)).limit(1)
  if (existingServe && existingServe.type !== 'api') {
    throw new AppError(409, 'SERVE_TYPE_MISMATCH', `Serve ${body.serve_name} is a ${existingServe.type} serve; a model needs an api serve`)
  }
  const serve = existingServe ?? (await createServe(db, audit, { name: body.serve_name, type: 'api', description: `MLflow model ${body.model_uri}`.slice(0, 1024) }))

  const subject = { serve, environment }
  const infraBody = { api_serve_infra_config: infra }
  // A new infra config is created now; a changed one is stored with the revision below, in its transaction.
  const stored = await infraConfigRow(db, lockKey(subject))
  if (!stored) await createInfraConfig(db, audit, serve.name, environment.name, infraBody)
  const infraSnapshot = mergedInfraConfig(serve, stored ?? ((await infraConfigRow(db, lockKey(subject))) as InfraConfigRow), infraBody)

  const version = body.artifact_version ?? modelArtifactVersion(body.model_uri)
  const [artifact] = await db.select().from(artifacts).where(and(eq(artifacts.serveId, serve.id), eq(artifacts.version, version))).limit(1)
  const image = artifact?.image ?? (await createArtifact(artifactDeps, audit, { serve_name: serve.name, version, image: config.defaultRuntime })).image
  if (!image) throw new Error(`artifact ${version} of ${serve.name} has no image`)

  const deploymentConfig = {
    deployment_strategy: 'rolling' as const,
    environment_variables: { ...(body.environment_variables ?? {}), MLFLOW_MODEL_URI: body.model_uri, MODEL_VERSION: version },
  }
  const active = await activeRevision(db, subject)
  if (active && active.artifactVersion === version && JSON.stringify(active.deploymentConfig) === JSON.stringify(deploymentConfig) && sameSnapshot(active.infraSnapshot, infraSnapshot)) {
    throw new AppError(409, 'ALREADY_DEPLOYED', `Model ${body.model_uri} is already deployed as ${serve.name} in ${environment.name} (revision ${active.revision}) with these settings`)
  }
  const row = await deployPrepared(deps, audit, subject, { artifact: { version, image }, deploymentConfig, infraSnapshot })
  return { row, subject }
}

export async function undeployModel(deps: DeploymentDeps, audit: AuditContext, body: { serve_name: string; env: string }) {
  await findServe(deps.db, body.serve_name)
  return undeploy(deps, audit, body.serve_name, body.env)
}
