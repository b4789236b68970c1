import { Elysia, status } from 'elysia'
import type { AppContext } from '../../context'
import { errorResponses, mutationErrorResponses, ok, okPage } from '../../lib/http'
import { auditContextOf } from '../../plugins/audit'
import { routeScopes } from '../../plugins/auth'
import { TokenModel } from './model'
import * as service from './service'

const tags = ['Tokens']

export const tokenController = ({ database }: AppContext) =>
  new Elysia({ name: 'token', prefix: '/tokens' })
    .use(routeScopes)
    .post(
      '',
      async ({ body, request, route }) => {
        const { row, token } = await service.createToken(database.db, auditContextOf(request, route), body)
        return status(201, ok({ ...service.toToken(row), token }, 'Token created; it is shown only once'))
      },
      {
        body: TokenModel.createBody,
        scope: 'admin',
        response: { 201: TokenModel.created, ...mutationErrorResponses(409) },
        detail: { operationId: 'createToken', tags, summary: 'Create an API token (admin); the token is shown only in this response' },
      },
    )
    .get(
      '',
      async ({ query }) => {
        const page = await service.listTokens(database.db, query)
        return okPage({ ...page, items: page.items.map(service.toToken) })
      },
      {
        query: TokenModel.listQuery,
        scope: 'admin',
        response: { 200: TokenModel.page, ...errorResponses() },
        detail: { operationId: 'listTokens', tags, summary: 'List API tokens (admin); never shows token values' },
      },
    )
    .delete(
      '/:token_id',
      async ({ params, request, route }) =>
        ok(service.toToken(await service.revokeToken(database.db, auditContextOf(request, route), params.token_id)), 'Token revoked'),
      {
        params: TokenModel.params,
        scope: 'admin',
        response: { 200: TokenModel.one, ...mutationErrorResponses(404) },
        detail: { operationId: 'revokeToken', tags, summary: 'Revoke an API token (admin); idempotent' },
      },
    )
