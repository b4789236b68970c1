import { Elysia, status } from 'elysia'
import type { AppContext } from '../../context'
import { errorResponses, mutationErrorResponses, ok, okPage } from '../../lib/http'
import { auditContextOf } from '../../plugins/audit'
import { routeScopes } from '../../plugins/auth'
import { EnvironmentModel } from './model'
import * as service from './service'

const tags = ['Environment']

/** `hooks.configsDcmCannotInstall`: what refuses a switch to cluster_driver dcm (the infra-config module knows). */
export const environmentController = ({ database, config }: AppContext, hooks: Pick<service.DriverSettings, 'configsDcmCannotInstall'> = {}) =>
  new Elysia({ name: 'environment', prefix: '/environment' })
    .use(routeScopes)
    .post(
      '',
      async ({ body, request, route }) =>
        status(
          201,
          ok(service.toEnvironment(await service.createEnvironment(database.db, auditContextOf(request, route), body, { istio: config.istio.enabled, ...hooks })), 'Environment created'),
        ),
      {
        body: EnvironmentModel.createBody,
        scope: 'write',
        response: { 201: EnvironmentModel.one, ...mutationErrorResponses(409) },
        detail: { operationId: 'createEnvironment', tags, summary: 'Create an environment (a deployment target: cluster, namespace, domain). 409 DCM_UNSUPPORTED: cluster_driver dcm while ENABLE_ISTIO is on (DCM\'s chart has no Istio route)' },
      },
    )
    .get(
      '',
      async ({ query }) => {
        const page = await service.listEnvironments(database.db, query)
        return okPage({ ...page, items: page.items.map(service.toEnvironment) })
      },
      {
        query: EnvironmentModel.listQuery,
        scope: 'read',
        response: { 200: EnvironmentModel.page, ...errorResponses() },
        detail: { operationId: 'listEnvironments', tags, summary: 'List environments, ordered by name, paginated' },
      },
    )
    .get(
      '/:environment_name',
      async ({ params }) => ok(service.toEnvironment(await service.findEnvironment(database.db, params.environment_name))),
      {
        params: EnvironmentModel.params,
        scope: 'read',
        response: { 200: EnvironmentModel.one, ...errorResponses(404) },
        detail: { operationId: 'getEnvironment', tags, summary: 'Get one environment' },
      },
    )
    .patch(
      '/:environment_name',
      async ({ params, body, request, route }) =>
        ok(
          service.toEnvironment(
            await service.updateEnvironment(database.db, auditContextOf(request, route), params.environment_name, body, { istio: config.istio.enabled, ...hooks }),
          ),
          'Environment updated',
        ),
      {
        params: EnvironmentModel.params,
        body: EnvironmentModel.updateBody,
        scope: 'write',
        response: { 200: EnvironmentModel.one, ...mutationErrorResponses(404, 409) },
        detail: {
          operationId: 'updateEnvironment',
          tags,
          summary:
            'Update an environment: the given config keys are merged into the stored ones. 409 DCM_UNSUPPORTED: cluster_driver dcm while ENABLE_ISTIO is on, or while infra configs here are ones DCM cannot install (workflow serves, backend_type ray)',
        },
      },
    )
    .delete(
      '/:environment_name',
      async ({ params, request, route }) => {
        await service.deleteEnvironment(database.db, auditContextOf(request, route), params.environment_name)
        return ok({ name: params.environment_name }, 'Environment deleted')
      },
      {
        params: EnvironmentModel.params,
        scope: 'write',
        response: { 200: EnvironmentModel.deleted, ...mutationErrorResponses(404, 409) },
        detail: { operationId: 'deleteEnvironment', tags, summary: 'Delete an environment (refused with 409 while anything references it)' },
      },
    )
