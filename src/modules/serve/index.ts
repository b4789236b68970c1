import { Elysia, status } from 'elysia'
import type { AppContext } from '../../context'
import { errorResponses, mutationErrorResponses, ok, okPage } from '../../lib/http'
import { auditContextOf } from '../../plugins/audit'
import { routeScopes } from '../../plugins/auth'
import { ServeModel } from './model'
import { OverviewModel, serveOverview } from './overview'
import * as service from './service'

const tags = ['Serve']

export const serveController = ({ database }: AppContext) =>
  new Elysia({ name: 'serve', prefix: '/serve' })
    .use(routeScopes)
    .post(
      '',
      async ({ body, request, route }) =>
        status(201, ok(service.toServe(await service.createServe(database.db, auditContextOf(request, route), body)), 'Serve created')),
      {
        body: ServeModel.createBody,
        scope: 'write',
        response: { 201: ServeModel.one, ...mutationErrorResponses(409) },
        detail: { operationId: 'createServe', tags, summary: 'Create a serve (a model service), api or workflow' },
      },
    )
    .get(
      '',
      async ({ query }) => {
        const page = await service.listServes(database.db, query)
        return okPage({ ...page, items: page.items.map(service.toServe) })
      },
      {
        query: ServeModel.listQuery,
        scope: 'read',
        response: { 200: ServeModel.page, ...errorResponses() },
        detail: { operationId: 'listServes', tags, summary: 'List serves, ordered by name, paginated; filter by space, type and name prefix' },
      },
    )
    .get('/:serve_name', async ({ params }) => ok(await serveOverview(database.db, params.serve_name)), {
      params: ServeModel.params,
      scope: 'read',
      response: { 200: OverviewModel.one, ...errorResponses(404) },
      detail: { operationId: 'getServe', tags, summary: 'A serve with its infra configs per environment, its latest artifacts and where it is deployed' },
    })
    .patch(
      '/:serve_name',
      async ({ params, body, request, route }) =>
        ok(service.toServe(await service.updateServe(database.db, auditContextOf(request, route), params.serve_name, body)), 'Serve updated'),
      {
        params: ServeModel.params,
        body: ServeModel.updateBody,
        scope: 'write',
        response: { 200: ServeModel.one, ...mutationErrorResponses(404) },
        detail: { operationId: 'updateServe', tags, summary: "Change a serve's description or space (name and type are fixed)" },
      },
    )
    .delete(
      '/:serve_name',
      async ({ params, request, route }) => {
        await service.deleteServe(database.db, auditContextOf(request, route), params.serve_name)
        return ok({ name: params.serve_name }, 'Serve deleted')
      },
      {
        params: ServeModel.params,
        scope: 'write',
        response: { 200: ServeModel.deleted, ...mutationErrorResponses(404, 409) },
        detail: { operationId: 'deleteServe', tags, summary: 'Delete a serve with its infra configs and artifacts (409 while it is deployed anywhere)' },
      },
    )
