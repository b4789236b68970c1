import { and, count, desc, eq, inArray, type SQL, sql } from 'drizzle-orm'
import { type ArtifactBuilderClient, ArtifactBuilderError, artifactBuilderFor, type BuildStatus } from '../../clients/artifact-builder'
import type { Config } from '../../config'
import type { AppContext } from '../../context'
import type { Db, Tx } from '../../db/client'
import { preparedPerHandle } from '../../db/prepared'
import { type ArtifactRow, artifacts, PENDING_ARTIFACT_STATUSES, type ServeRow, serves } from '../../db/schema'
import { AppError, badGateway, alreadyExists, invalid, isDuplicateKey } from '../../lib/errors'
import { describeError, type Logger } from '../../lib/logger'
import { type Page, type PageRequest, pageWindow } from '../../lib/pagination'
import type { AuditContext } from '../../lib/audit'
import { recordAudit } from '../../lib/audit-log'
import { findServe } from '../serve/service'
import type { ArtifactModel } from './model'

/** What the artifact services and the poller work with. */
export interface ArtifactDeps {
  db: Db
  builder: ArtifactBuilderClient
  registry: Config['registry']
  log: Logger
}

export const artifactDepsFor = ({ config, database, log }: AppContext): ArtifactDeps => ({
  db: database.db,
  builder: artifactBuilderFor(config),
  registry: config.registry,
  log,
})

const DEFAULT_BRANCH = 'main'

/** The original's naming: `{CONTAINER_REGISTRY}/{IMAGE_REPOSITORY}:{serve}_{version}`. */
export const imageTagFor = (serveName: string, version: string) => `${serveName}_${version}`
export const builtImageFor = (registry: Config['registry'], serveName: string, version: string) =>
  `${registry.containerRegistry}/${registry.imageRepository}:${imageTagFor(serveName, version)}`

export function toArtifact(row: ArtifactRow, serveName: string): ArtifactModel.Artifact {
  return {
    id: row.id,
    serve_name: serveName,
    version: row.version,
    source: row.source,
    status: row.status,
    image: row.image,
    github_repo_url: row.githubRepoUrl,
    branch: row.branch,
    commit: row.commit,
    dockerfile_path: row.dockerfilePath,
    failure_reason: row.failureReason,
    logs_url: row.logsUrl,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

export function toJob(artifact: ArtifactModel.Artifact): ArtifactModel.Job {
  const { id, serve_name, version, status, logs_url, failure_reason, created_at, updated_at } = artifact
  return { job_id: id, serve_name, version, status, logs_url, failure_reason, created_at, updated_at }
}

const isPending = (row: ArtifactRow) => (PENDING_ARTIFACT_STATUSES as readonly string[]).includes(row.status)

async function findRow(db: Db, serve: ServeRow, version: string): Promise<ArtifactRow> {
  const [row] = await db.select().from(artifacts).where(and(eq(artifacts.serveId, serve.id), eq(artifacts.version, version))).limit(1)
  if (!row) throw new AppError(404, 'NOT_FOUND', `Artifact ${version} of serve ${serve.name} not found`)
  return row
}

/** The repo of the serve's latest build: later artifacts of a serve may leave github_repo_url out. */
async function inheritedRepoUrl(db: Db, serve: ServeRow): Promise<string | undefined> {
  const [latest] = await db
    .select({ url: artifacts.githubRepoUrl })
    .from(artifacts)
    .where(and(eq(artifacts.serveId, serve.id), eq(artifacts.source, 'build')))
    .orderBy(desc(artifacts.createdAt), desc(artifacts.id))
    .limit(1)
  return latest?.url ?? undefined
}

const BUILD_FIELDS = ['github_repo_url', 'branch', 'commit', 'dockerfile_path'] as const

/**
 * A prebuilt image is registered as succeeded. A build is inserted and handed to the builder in one
 * transaction: the unique (serve, version) row is claimed first, so a duplicate never reaches the
 * builder, and a builder that fails or is down rolls the row back (502, nothing left behind).
 */
export async function createArtifact(deps: ArtifactDeps, audit: AuditContext, body: ArtifactModel.CreateBody): Promise<ArtifactModel.Artifact> {
  const { db, builder } = deps
  const serve = await findServe(db, body.serve_name)
  const record = (tx: Tx) =>
    recordAudit(tx, audit, { resourceType: 'artifact', resourceName: `${serve.name}:${body.version}`, statusCode: 201, summary: { ...body } })
  try {
    if (body.image !== undefined) {
      const mixed = BUILD_FIELDS.filter((field) => body[field] !== undefined)
      if (mixed.length > 0) {
        throw invalid(mixed.map((field) => ({ path: `/${field}`, message: 'not with a prebuilt image: give either image or a git source' })))
      }
      await db.transaction(async (tx) => {
        await tx.insert(artifacts).values({ serveId: serve.id, version: body.version, source: 'prebuilt', image: body.image, status: 'succeeded' })
        await record(tx)
      })
    } else {
      const repoUrl = body.github_repo_url ?? (await inheritedRepoUrl(db, serve))
      if (repoUrl === undefined) {
        throw invalid([{ path: '/github_repo_url', message: `the first artifact of serve ${serve.name} needs github_repo_url (or a prebuilt image)` }])
      }
      const branch = body.branch ?? DEFAULT_BRANCH
      await db.transaction(async (tx) => {
        const [inserted] = await tx
          .insert(artifacts)
          .values({
            serveId: serve.id,
            version: body.version,
            source: 'build',
            githubRepoUrl: repoUrl,
            branch,
            commit: body.commit,
            dockerfilePath: body.dockerfile_path,
            status: 'queued',
          })
          .$returningId()
        if (!inserted) throw new Error('inserting an artifact returned no id')
        await record(tx)
        const started = await startBuild(builder, {
          appName: serve.name,
          imageTag: imageTagFor(serve.name, body.version),
          gitRepo: repoUrl,
          branch,
          commit: body.commit,
          dockerfilePath: body.dockerfile_path,
        })
        // Checked just now: the poller's first look comes one interval later.
        await tx
          .update(artifacts)
          .set({ builderTaskId: started.taskId, logsUrl: started.logsUrl, statusCheckedAt: new Date() })
          .where(eq(artifacts.id, inserted.id))
      })
      deps.log.info('artifact build started', { serve: serve.name, version: body.version })
    }
  } catch (error) {
    if (isDuplicateKey(error)) throw alreadyExists(`Artifact ${body.version} of serve ${serve.name} already exists`)
    throw error
  }
  return toArtifact(await findRow(db, serve, body.version), serve.name)
}

async function startBuild(builder: ArtifactBuilderClient, request: Parameters<ArtifactBuilderClient['startBuild']>[0]) {
  try {
    return await builder.startBuild(request)
  } catch (error) {
    if (!(error instanceof ArtifactBuilderError)) throw error
    // The builder refused this build (e.g. an unknown branch): the caller's to fix, not an outage.
    if (error.failure === 'rejected' && [400, 404, 422].includes(error.httpStatus ?? 0)) {
      throw new AppError(422, 'BUILD_REJECTED', `The Artifact Builder refused the build: ${error.message}`, [{ path: '/', message: error.message }])
    }
    throw badGateway('Artifact Builder', error.message)
  }
}

/** Moves a build forward to what the builder reports; never backwards (a later check may have won). */
async function applyBuildStatus(deps: ArtifactDeps, row: ArtifactRow, serveName: string, build: BuildStatus): Promise<void> {
  const logs = build.logsUrl ? { logsUrl: build.logsUrl } : {}
  const pending = inArray(artifacts.status, [...PENDING_ARTIFACT_STATUSES])
  const where = (status: SQL) => and(eq(artifacts.id, row.id), status)
  let next: ArtifactRow['status']
  switch (build.state) {
    case 'waiting':
      return
    case 'running':
      next = 'building'
      await deps.db.update(artifacts).set({ status: next, ...logs }).where(where(eq(artifacts.status, 'queued')))
      break
    case 'completed':
      next = 'succeeded'
      await deps.db
        .update(artifacts)
        .set({ status: next, image: builtImageFor(deps.registry, serveName, row.version), ...logs })
        .where(where(pending))
      break
    case 'failed':
      next = 'failed'
      await deps.db
        .update(artifacts)
        .set({ status: next, failureReason: build.message ?? 'the Artifact Builder reported the build as failed', ...logs })
        .where(where(pending))
      break
  }
  if (next !== row.status) deps.log.info('artifact build status', { serve: serveName, version: row.version, from: row.status, to: next })
}

/** Asks the builder about a pending build and records the answer. Builder failures are thrown. */
export async function refreshBuild(deps: ArtifactDeps, row: ArtifactRow, serveName: string): Promise<void> {
  if (!isPending(row) || row.builderTaskId === null) return
  let build: BuildStatus
  try {
    build = await deps.builder.buildStatus(row.builderTaskId)
  } catch (error) {
    // A builder that no longer knows the task will never finish it.
    if (!(error instanceof ArtifactBuilderError && error.failure === 'rejected' && error.httpStatus === 404)) throw error
    build = { state: 'failed', message: `the Artifact Builder does not know build task ${row.builderTaskId}` }
  }
  await applyBuildStatus(deps, row, serveName, build)
}

/** On reads: refresh a pending build, but answer with what is stored when the builder cannot say. */
async function refreshedOnRead(deps: ArtifactDeps, row: ArtifactRow, serve: ServeRow): Promise<ArtifactModel.Artifact> {
  if (isPending(row)) {
    try {
      await refreshBuild(deps, row, serve.name)
      return toArtifact(await findRow(deps.db, serve, row.version), serve.name)
    } catch (error) {
      deps.log.warn('could not refresh an artifact build', { serve: serve.name, version: row.version, ...describeError(error) })
    }
  }
  return toArtifact(row, serve.name)
}

export async function findArtifact(deps: ArtifactDeps, serveName: string, version: string): Promise<ArtifactModel.Artifact> {
  const serve = await findServe(deps.db, serveName)
  return refreshedOnRead(deps, await findRow(deps.db, serve, version), serve)
}

export async function findBuildJob(deps: ArtifactDeps, jobId: number): Promise<ArtifactModel.Job> {
  const [found] = await deps.db
    .select({ artifact: artifacts, serve: serves })
    .from(artifacts)
    .innerJoin(serves, eq(serves.id, artifacts.serveId))
    .where(and(eq(artifacts.id, jobId), eq(artifacts.source, 'build')))
    .limit(1)
  if (!found) throw new AppError(404, 'NOT_FOUND', `Artifact builder job ${jobId} not found`)
  return toJob(await refreshedOnRead(deps, found.artifact, found.serve))
}

/** Newest first. `serve_name` must name an existing serve when given. */
export async function listArtifacts(
  db: Db,
  query: PageRequest & { serve_name?: string; status?: ArtifactRow['status']; source?: ArtifactRow['source'] },
): Promise<Page<ArtifactModel.Artifact>> {
  const { page, limit, offset } = pageWindow(query)
  const conditions: SQL[] = []
  if (query.serve_name !== undefined) conditions.push(eq(artifacts.serveId, (await findServe(db, query.serve_name)).id))
  if (query.status !== undefined) conditions.push(eq(artifacts.status, query.status))
  if (query.source !== undefined) conditions.push(eq(artifacts.source, query.source))
  const where = conditions.length > 0 ? and(...conditions) : undefined
  const [rows, [totals]] = await Promise.all([
    db
      .select({ artifact: artifacts, serveName: serves.name })
      .from(artifacts)
      .innerJoin(serves, eq(serves.id, artifacts.serveId))
      .where(where)
      .orderBy(desc(artifacts.createdAt), desc(artifacts.id))
      .limit(limit)
      .offset(offset),
    db.select({ total: count() }).from(artifacts).where(where),
  ])
  return { items: rows.map(({ artifact, serveName }) => toArtifact(artifact, serveName)), total: totals?.total ?? 0, page, limit }
}

/** The newest artifacts of a serve, for its overview. */
export async function latestArtifactsOf(db: Db, serve: ServeRow, limit: number): Promise<ArtifactModel.Artifact[]> {
  const rows = await latestArtifactsQuery(db).execute({ serveId: serve.id, limit })
  return rows.map((row) => toArtifact(row, serve.name))
}

const latestArtifactsQuery = preparedPerHandle((db: Db) =>
  db
    .select()
    .from(artifacts)
    .where(eq(artifacts.serveId, sql.placeholder('serveId')))
    .orderBy(desc(artifacts.createdAt), desc(artifacts.id))
    .limit(sql.placeholder('limit'))
    .prepare(),
)
