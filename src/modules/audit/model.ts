import { t } from 'elysia'
import { Named, StringEnum } from '../../lib/schema'
import { AUDIT_OUTCOMES } from '../../db/schema'
import { PageEnvelope } from '../../lib/http'
import { PageQuery } from '../../lib/pagination'

export namespace AuditModel {
  const filters = {
    resource_type: t.Optional(t.String({ maxLength: 50, examples: ['environment'] })),
    resource_name: t.Optional(t.String({ maxLength: 255 })),
    actor: t.Optional(t.String({ maxLength: 100, description: 'Token name' })),
    action: t.Optional(t.String({ maxLength: 200, examples: ['POST /api/v1/environment'] })),
    outcome: t.Optional(StringEnum(AUDIT_OUTCOMES)),
    from: t.Optional(t.String({ format: 'date-time', description: 'Entries at or after this instant' })),
    to: t.Optional(t.String({ format: 'date-time', description: 'Entries at or before this instant' })),
  }
  export const listQuery = t.Object({ ...PageQuery, ...filters })
  const filtersObject = t.Object(filters)
  export type Filters = typeof filtersObject.static

  export const entry = Named('AuditRecord', t.Object({
    id: t.Integer(),
    at: t.String({ format: 'date-time' }),
    actor: t.Object({ token_id: t.Nullable(t.Integer()), name: t.String() }),
    action: t.String(),
    resource_type: t.String(),
    resource_name: t.String(),
    outcome: StringEnum(AUDIT_OUTCOMES),
    status_code: t.Integer(),
    request_id: t.String(),
    summary: t.Record(t.String(), t.Unknown()),
  }))
  export type Entry = typeof entry.static
  export const page = PageEnvelope(entry)
}
