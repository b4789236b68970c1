import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { errorResponses, okPage } from '../../lib/http'
import { routeScopes } from '../../plugins/auth'
import { AuditModel } from './model'
import * as service from './service'

export const auditController = ({ database }: AppContext) =>
  new Elysia({ name: 'audit', prefix: '/audit' })
    .use(routeScopes)
    .get(
      '',
      async ({ query }) => {
        const page = await service.listAudit(database.db, query)
        return okPage({ ...page, items: page.items.map(service.toAuditEntry) })
      },
      {
        query: AuditModel.listQuery,
        scope: 'admin',
        response: { 200: AuditModel.page, ...errorResponses() },
        detail: { operationId: 'listAuditRecords', tags: ['Audit'], summary: 'Audit log of every mutation, newest first; filter by resource, actor, action, outcome, time' },
      },
    )
