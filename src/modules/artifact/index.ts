import { Elysia, status } from 'elysia'
import type { AppContext } from '../../context'
import { errorResponses, mutationErrorResponses, ok, okPage } from '../../lib/http'
import { auditContextOf } from '../../plugins/audit'
import { routeScopes } from '../../plugins/auth'
import { ArtifactModel } from './model'
import * as service from './service'

const tags = ['Artifact']

export const artifactController = (context: AppContext) => {
  const deps = service.artifactDepsFor(context)
  return new Elysia({ name: 'artifact' })
    .use(routeScopes)
    .post(
      '/artifact',
      async ({ body, request, route }) => {
        const artifact = await service.createArtifact(deps, auditContextOf(request, route), body)
        return status(201, ok(artifact, artifact.source === 'build' ? 'Artifact build started' : 'Artifact registered'))
      },
      {
        body: ArtifactModel.createBody,
        scope: 'write',
        response: { 201: ArtifactModel.one, ...mutationErrorResponses(404, 409, 502) },
        detail: {
          operationId: 'createArtifact',
          tags,
          summary:
            'Create an artifact: built by the Artifact Builder from github_repo_url + branch (status queued, followed until succeeded or failed), or a prebuilt image registered as succeeded',
        },
      },
    )
    .get('/artifact', async ({ query }) => okPage(await service.listArtifacts(deps.db, query)), {
      query: ArtifactModel.listQuery,
      scope: 'read',
      response: { 200: ArtifactModel.page, ...errorResponses(404) },
      detail: { operationId: 'listArtifacts', tags, summary: 'List artifacts, newest first, paginated; filter by serve_name and status' },
    })
    .get(
      '/artifact/:serve_name',
      async ({ params, query }) => okPage(await service.listArtifacts(deps.db, { ...query, serve_name: params.serve_name })),
      {
        params: ArtifactModel.serveParams,
        query: ArtifactModel.serveListQuery,
        scope: 'read',
        response: { 200: ArtifactModel.page, ...errorResponses(404) },
        detail: { operationId: 'listServeArtifacts', tags, summary: "A serve's artifacts, newest first (the original's route)" },
      },
    )
    .get(
      '/serve/:serve_name/artifact/:version',
      async ({ params }) => ok(await service.findArtifact(deps, params.serve_name, params.version)),
      {
        params: ArtifactModel.versionParams,
        scope: 'read',
        response: { 200: ArtifactModel.one, ...errorResponses(404) },
        detail: { operationId: 'getArtifact', tags, summary: "One artifact of a serve; a pending build's status is refreshed from the Artifact Builder" },
      },
    )
    .get('/artifact_builder_job/:job_id/status', async ({ params }) => ok(await service.findBuildJob(deps, params.job_id)), {
      params: ArtifactModel.jobParams,
      scope: 'read',
      response: { 200: ArtifactModel.oneJob, ...errorResponses(404) },
      detail: { operationId: 'getBuildJobStatus', tags, summary: "A build job's status, refreshed from the Artifact Builder while pending (the original's route)" },
    })
    .get(
      '/artifact_builder_job',
      async ({ query }) => {
        const page = await service.listArtifacts(deps.db, { ...query, source: 'build' })
        return okPage({ ...page, items: page.items.map(service.toJob) })
      },
      {
        query: ArtifactModel.listQuery,
        scope: 'read',
        response: { 200: ArtifactModel.jobPage, ...errorResponses(404) },
        detail: { operationId: 'listBuildJobs', tags, summary: 'Build jobs, newest first, paginated; filter by serve_name and status (the original\'s route)' },
      },
    )
}
