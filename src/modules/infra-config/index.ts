import { Elysia, status } from 'elysia'
import type { AppContext } from '../../context'
import { errorResponses, ok } from '../../lib/http'
import { auditContextOf } from '../../plugins/audit'
import { InfraConfigModel } from './model'
import * as service from './service'

const tags = ['Infra config']

/** `hooks` lets the deployment module redeploy a serve when its infra config changes. */
export const infraConfigController = ({ database }: AppContext, hooks: service.InfraConfigHooks = service.noInfraConfigHooks) =>
  new Elysia({ name: 'infra-config', prefix: '/serve/:serve_name/infra-config' })
    .get('', async ({ params }) => ok(await service.listInfraConfigs(database.db, params.serve_name)), {
      params: InfraConfigModel.serveParams,
      response: { 200: InfraConfigModel.all, ...errorResponses(404) },
      detail: { tags, summary: "A serve's infra configs, one per environment, ordered by environment name" },
    })
    .post(
      '/:env',
      async ({ params, body, request, route }) =>
        status(
          201,
          ok(await service.createInfraConfig(database.db, auditContextOf(request, route), params.serve_name, params.env, body), 'Infra config created'),
        ),
      {
        params: InfraConfigModel.params,
        body: InfraConfigModel.createBody,
        response: { 201: InfraConfigModel.one, ...errorResponses(400, 404, 409) },
        detail: { tags, summary: "Set a serve's infra config for an environment (409 if it exists: PATCH it)" },
      },
    )
    .get('/:env', async ({ params }) => ok(await service.findInfraConfig(database.db, params.serve_name, params.env)), {
      params: InfraConfigModel.params,
      response: { 200: InfraConfigModel.one, ...errorResponses(404) },
      detail: { tags, summary: "A serve's infra config for one environment" },
    })
    .patch(
      '/:env',
      async ({ params, body, request, route }) =>
        ok(
          await service.updateInfraConfig(database.db, auditContextOf(request, route), hooks, params.serve_name, params.env, body),
          'Infra config updated',
        ),
      {
        params: InfraConfigModel.params,
        body: InfraConfigModel.updateBody,
        // The redeploy it triggers answers like a deploy: 409 while another change runs, 502 when the cluster fails.
        response: { 200: InfraConfigModel.one, ...errorResponses(400, 404, 409, 502) },
        detail: {
          tags,
          summary: 'Change some fields of an infra config; the merged result is validated again. A deployed serve is redeployed with it',
        },
      },
    )
