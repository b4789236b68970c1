import { Elysia, status, t } from 'elysia'
import type { AppContext } from '../../context'
import type { DeploymentRow } from '../../db/schema'
import { AppError } from '../../lib/errors'
import { Envelope, errorResponses, mutationErrorResponses, ok, okPage, YAML_ANSWER } from '../../lib/http'
import { auditContextOf } from '../../plugins/audit'
import { routeScopes } from '../../plugins/auth'
import { sortKeys, toYaml } from '../../render'
import { type ArtifactDeps, artifactDepsFor } from '../artifact/service'
import { DeploymentModel } from './model'
import { deployModel, undeployModel } from './one-click'
import * as service from './service'
import { createRolloutTracker, type RolloutTracker } from '../placement/tracker'

const tags = ['Deployment']

export interface DeploymentRuntime {
  deps: service.DeploymentDeps
  artifactDeps: ArtifactDeps
  tracker: RolloutTracker
}

type Subject = Parameters<typeof service.toRevision>[2]

/** The deployment module's dependencies and its rollout tracker, built once per app. */
export function createDeploymentRuntime(context: AppContext): DeploymentRuntime {
  const deps: service.DeploymentDeps = { db: context.database.db, config: context.config, drivers: context.clusterDrivers, log: context.log }
  return { deps, artifactDeps: artifactDepsFor(context), tracker: createRolloutTracker(deps, { intervalMs: context.config.rollout.pollIntervalMs, render: (subject) => service.renderFor(deps, subject) }) }
}

export const deploymentController = (context: AppContext, runtime: DeploymentRuntime) => {
  const { deps, tracker } = runtime

  /**
   * 201 Created with the revision it recorded (`Location`), rolling out; with `?wait=N`, 200 once the
   * rollout has ended, or 504 with where it is.
   */
  async function answer(row: DeploymentRow, subject: Subject, waitSeconds: number | undefined, set: { headers: Record<string, unknown> }) {
    set.headers.location = `/api/v1/serve/${subject.serve.name}/deployments/${row.revision}`
    if (!waitSeconds) return status(201, ok(service.toRevision(row, deps.config, subject), `Revision ${row.revision} is rolling out`))
    const settled = await tracker.settle(row.id, waitSeconds * 1000)
    const revision = service.toRevision(settled, deps.config, subject)
    if (settled.status === 'deploying' || settled.status === 'pending') {
      throw new AppError(
        504,
        'ROLLOUT_TIMEOUT',
        `Revision ${row.revision} is still ${settled.status} after ${waitSeconds}s; follow it at GET /api/v1/serve/${subject.serve.name}/deployment/${subject.environment.name}`,
      )
    }
    const rolledBack = settled.rolledBackTo === null ? '' : `; rolled back automatically: revision ${settled.rolledBackTo} serves in its place`
    const message = settled.status === 'failed' ? `Revision ${row.revision} failed: ${settled.failureReason ?? 'unknown reason'}${rolledBack}` : `Revision ${row.revision} is ${settled.status}`
    return status(200, ok(revision, message))
  }

  return new Elysia({ name: 'deployment', prefix: '/serve' })
    .use(routeScopes)
    .post(
      '/:serve_name/deploy',
      async ({ params, body, query, request, route, set }) => {
        const outcome = await service.deploy(deps, auditContextOf(request, route), params.serve_name, body)
        if (outcome.kind === 'dry-run') {
          return status(200, ok({ dry_run: true as const, manifests: outcome.manifests, diff: outcome.diff, active_revision: outcome.activeRevision }, 'Dry run: nothing was applied or recorded'))
        }
        return answer(outcome.row, outcome.subject, query.wait, set)
      },
      {
        params: DeploymentModel.serveParams,
        query: DeploymentModel.waitQuery,
        body: DeploymentModel.deployBody,
        scope: 'deploy',
        response: { 200: t.Union([DeploymentModel.one, DeploymentModel.dryRun], { description: 'OK: with `?wait=`, the `Revision` once its rollout ended (`active` or `failed`); with `"dry_run": true`, the manifests and their diff against the active revision' }), 201: DeploymentModel.created, ...mutationErrorResponses(404, 409, 502, 504) },
        detail: {
          operationId: 'deployServe',
          tags,
          summary: 'Deploy an artifact to an environment: records a revision, applies it, answers 201 with its Location (or waits with ?wait=seconds: 200); dry_run previews it',
        },
      },
    )
    .post(
      '/:serve_name/rollback',
      async ({ params, body, query, request, route, set }) => {
        const { row, subject } = await service.rollback(deps, auditContextOf(request, route), params.serve_name, body)
        return answer(row, subject, query.wait, set)
      },
      {
        params: DeploymentModel.serveParams,
        query: DeploymentModel.waitQuery,
        body: DeploymentModel.rollbackBody,
        scope: 'deploy',
        response: { 200: DeploymentModel.one, 201: DeploymentModel.created, ...mutationErrorResponses(404, 409, 502, 504) },
        detail: { operationId: 'rollbackServe', tags, summary: 'Roll back: a new revision made from an earlier one (default: the last one active before the current)' },
      },
    )
    .post(
      '/:serve_name/undeploy',
      async ({ params, body, request, route }) => {
        const result = await service.undeploy(deps, auditContextOf(request, route), params.serve_name, body.env)
        return undeployed(result)
      },
      {
        params: DeploymentModel.serveParams,
        body: DeploymentModel.envBody,
        scope: 'deploy',
        response: { 200: DeploymentModel.undeployed, ...mutationErrorResponses(404, 409, 502) },
        detail: { operationId: 'undeployServe', tags, summary: 'Undeploy from an environment: removes the objects, keeps config and history; idempotent' },
      },
    )
    .post(
      '/:serve_name/undeploy/:env',
      async ({ params, request, route }) => undeployed(await service.undeploy(deps, auditContextOf(request, route), params.serve_name, params.env)),
      {
        params: DeploymentModel.envParams,
        scope: 'deploy',
        response: { 200: DeploymentModel.undeployed, ...mutationErrorResponses(404, 409, 502) },
        detail: { operationId: 'undeployServeFromEnvironment', tags, summary: "Undeploy from an environment (the original's path)" },
      },
    )
    .get('/:serve_name/deployment/:env', async ({ params }) => ok(await service.currentDeployment(deps, params.serve_name, params.env)), {
      params: DeploymentModel.envParams,
      scope: 'read',
      response: { 200: DeploymentModel.current, ...errorResponses(404) },
      detail: { operationId: 'getDeployment', tags, summary: 'What is deployed in an environment: the active and in-flight revisions and live rollout progress' },
    })
    .post(
      '/:serve_name/deployment/:env/promote',
      async ({ params, body, request, route }) => {
        const current = await service.changeCanary(deps, auditContextOf(request, route), params.serve_name, params.env, { promote: { full: body?.full ?? false } })
        return ok(current, current.canary?.phase === 'promoting' ? 'The canary is promoted to 100 %: it rolls out as a whole' : `The canary is at ${current.canary?.weight ?? 0} %`)
      },
      {
        params: DeploymentModel.envParams,
        body: t.Optional(DeploymentModel.promoteBody),
        scope: 'deploy',
        response: { 200: DeploymentModel.current, ...mutationErrorResponses(404, 409, 502) },
        detail: { operationId: 'promoteCanary', tags, summary: 'Promote the canary: its next step now, or with {"full": true} straight to 100 % (409 NO_CANARY when none runs)' },
      },
    )
    .post(
      '/:serve_name/deployment/:env/abort',
      async ({ params, request, route }) => {
        const current = await service.changeCanary(deps, auditContextOf(request, route), params.serve_name, params.env, { abort: true })
        return ok(current, 'The canary is aborted: all traffic is back on the stable revision')
      },
      {
        params: DeploymentModel.envParams,
        scope: 'deploy',
        response: { 200: DeploymentModel.current, ...mutationErrorResponses(404, 409, 502) },
        detail: { operationId: 'abortCanary', tags, summary: 'Abort the canary: its objects are removed, all traffic goes back to the stable revision, the revision is cancelled' },
      },
    )
    .get('/:serve_name/status/:env', async ({ params }) => ok({ status: await service.readiness(deps, params.serve_name, params.env) }), {
      params: DeploymentModel.envParams,
      scope: 'read',
      response: { 200: DeploymentModel.readiness, ...errorResponses(404) },
      detail: { operationId: 'getServeStatus', tags, summary: "READY when a revision is active and every replica is ready, else NOT_READY (the original's status route)" },
    })
    .get(
      '/:serve_name/deployments',
      async ({ params, query }) => okPage(await service.history(deps, params.serve_name, query)),
      {
        params: DeploymentModel.serveParams,
        query: DeploymentModel.historyQuery,
        scope: 'read',
        response: { 200: DeploymentModel.page, ...errorResponses(404) },
        detail: { operationId: 'listDeployments', tags, summary: 'Deployment history of a serve, newest first; filter by env and status' },
      },
    )
    .get('/:serve_name/deployments/:revision', async ({ params }) => ok(await service.revisionDetail(deps, params.serve_name, params.revision)), {
      params: DeploymentModel.revisionParams,
      scope: 'read',
      response: { 200: DeploymentModel.oneWithManifests, ...errorResponses(404) },
      detail: { operationId: 'getRevision', tags, summary: 'One revision, with the manifests it applied' },
    })
    .get(
      '/:serve_name/manifests/:env',
      async ({ params, query, headers }) => {
        const rendered = await service.previewManifests(deps, params.serve_name, params.env, query.artifact_version)
        // YAML on request, as kubectl takes it; JSON in the envelope, like every other answer.
        const yaml = (headers.accept ?? '').includes('yaml')
        const body = yaml ? toYaml(rendered.manifests) : JSON.stringify(ok(sortKeys(rendered.manifests)))
        return new Response(body, { headers: { 'content-type': yaml ? 'application/yaml' : 'application/json' } })
      },
      {
        params: DeploymentModel.envParams,
        query: t.Object({ artifact_version: t.String({ minLength: 1, maxLength: 64 }) }),
        scope: 'read',
        response: {
          200: Envelope(t.Array(t.Record(t.String(), t.Unknown()), { description: 'The Kubernetes objects, in the order they are applied' }), [
            { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'my-model-serve', namespace: 'ml-serve' } },
          ]),
          ...errorResponses(404, 409),
        },
        detail: {
          operationId: 'previewManifests',
          [YAML_ANSWER]: 'The same objects as one multi-document YAML stream, as `kubectl apply -f -` takes it (`Accept: application/yaml`)',
          tags,
          summary: 'Preview the manifests a deploy of this artifact would apply; touches no cluster',
        },
      },
    )
    .post(
      '/deploy-model',
      async ({ body, query, request, route, set }) => {
        const { row, subject } = await deployModel(deps, runtime.artifactDeps, auditContextOf(request, route), body)
        return answer(row, subject, query.wait, set)
      },
      {
        query: DeploymentModel.waitQuery,
        body: DeploymentModel.deployModelBody,
        scope: 'deploy',
        response: { 200: DeploymentModel.one, 201: DeploymentModel.created, ...mutationErrorResponses(404, 409, 502, 504) },
        detail: { operationId: 'deployModel', tags: ['One-click'], summary: 'Deploy an MLflow model in one call: creates or reuses the serve, its infra config and artifact, then deploys' },
      },
    )
    .post(
      '/undeploy-model',
      async ({ body, request, route }) => undeployed(await undeployModel(deps, auditContextOf(request, route), body)),
      {
        body: DeploymentModel.undeployModelBody,
        scope: 'deploy',
        response: { 200: DeploymentModel.undeployed, ...mutationErrorResponses(404, 409, 502) },
        detail: { operationId: 'undeployModel', tags: ['One-click'], summary: 'Undeploy a one-click model from an environment' },
      },
    )
}

function undeployed(result: { subject: Subject; undeployedRevision: number | null }) {
  const { subject, undeployedRevision } = result
  const message = undeployedRevision === null ? 'Nothing to undeploy' : `Revision ${undeployedRevision} undeployed`
  return ok({ serve_name: subject.serve.name, env: subject.environment.name, undeployed_revision: undeployedRevision }, message)
}
