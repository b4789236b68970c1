import { Elysia, status } from 'elysia'
import type { AppContext } from '../../context'
import { errorResponses, mutationErrorResponses, ok } from '../../lib/http'
import { auditContextOf } from '../../plugins/audit'
import { routeScopes } from '../../plugins/auth'
import { checkDriverFit, type DriverFitSettings } from './driver-fit'
import { InfraConfigModel } from './model'
import * as service from './service'

const tags = ['Infra config']

/** `hooks` is how a PATCH is stored: the deployment module stores it and redeploys a deployed serve in one step. */
export const infraConfigController = ({ database, config }: AppContext, hooks: service.InfraConfigHooks, checks: Pick<DriverFitSettings, 'scheduleProblem'> = {}) =>
  new Elysia({ name: 'infra-config', prefix: '/serve/:serve_name/infra-config' })
    .use(routeScopes)
    .get('', async ({ params }) => ok(await service.listInfraConfigs(database.db, params.serve_name)), {
      params: InfraConfigModel.serveParams,
      scope: 'read',
      response: { 200: InfraConfigModel.all, ...errorResponses(404) },
      detail: { operationId: 'listInfraConfigs', tags, summary: "A serve's infra configs, one per environment, ordered by environment name" },
    })
    .post(
      '/:env',
      async ({ params, body, request, route }) => {
        await checkDriverFit(database.db, { istio: config.istio.enabled, ...checks }, params.serve_name, params.env, body)
        return status(201, ok(await service.createInfraConfig(database.db, auditContextOf(request, route), params.serve_name, params.env, body), 'Infra config created'))
      },
      {
        params: InfraConfigModel.params,
        body: InfraConfigModel.createBody,
        scope: 'write',
        response: { 201: InfraConfigModel.one, ...mutationErrorResponses(404, 409) },
        detail: {
          operationId: 'createInfraConfig',
          tags,
          summary:
            "Set a serve's infra config for an environment (409 if it exists: PATCH it). In an environment with cluster_driver dcm: a workflow serve or backend_type ray → 422 (DCM's chart installs FastAPI serves only), ENABLE_ISTIO → 409 DCM_UNSUPPORTED",
        },
      },
    )
    .get('/:env', async ({ params }) => ok(await service.findInfraConfig(database.db, params.serve_name, params.env)), {
      params: InfraConfigModel.params,
      scope: 'read',
      response: { 200: InfraConfigModel.one, ...errorResponses(404) },
      detail: { operationId: 'getInfraConfig', tags, summary: "A serve's infra config for one environment" },
    })
    .patch(
      '/:env',
      async ({ params, body, request, route }) => {
        await checkDriverFit(database.db, { istio: config.istio.enabled, ...checks }, params.serve_name, params.env, body)
        const updated = await service.updateInfraConfig(database.db, auditContextOf(request, route), hooks, params.serve_name, params.env, body)
        return ok(updated, updated.started_revision === null ? 'Infra config updated' : `Infra config updated; revision ${updated.started_revision} is rolling out with it`)
      },
      {
        params: InfraConfigModel.params,
        body: InfraConfigModel.updateBody,
        // The redeploy it starts answers like a deploy: 409 while a change is being applied, 502 when the cluster fails.
        scope: 'deploy',
        response: { 200: InfraConfigModel.updated, ...mutationErrorResponses(404, 409, 502) },
        detail: {
          operationId: 'updateInfraConfig',
          tags,
          summary: 'Change some fields of an infra config; the merged result is validated again. A deployed serve is redeployed with it (interrupting a rollout in flight); `started_revision` names that revision, null when nothing was started (nothing deployed, or nothing changed)',
        },
      },
    )
