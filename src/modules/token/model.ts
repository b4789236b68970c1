import { t } from 'elysia'
import { Named, StringEnum } from '../../lib/schema'
import { TOKEN_SCOPES } from '../../db/schema'
import { Envelope, PageEnvelope } from '../../lib/http'
import { PageQuery } from '../../lib/pagination'

export namespace TokenModel {
  export const createBody = t.Object(
    {
      name: t.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$', description: 'Unique; letters, digits, ".", "_", "-"', examples: ['ci-pipeline'] }),
      scopes: t.Array(StringEnum(TOKEN_SCOPES), { minItems: 1, maxItems: 4, uniqueItems: true }),
      expires_in_days: t.Optional(t.Integer({ minimum: 1, maximum: 3650 })),
    },
    { additionalProperties: false, examples: [{ name: 'ci-pipeline', scopes: ['read', 'write', 'deploy'], expires_in_days: 90 }] },
  )
  export type CreateBody = typeof createBody.static

  export const params = t.Object({ token_id: t.Integer({ minimum: 1 }) })
  export const listQuery = t.Object({ ...PageQuery, include_revoked: t.Optional(t.Boolean()) })

  export const token = Named('Token', t.Object({
    id: t.Integer(),
    name: t.String(),
    scopes: t.Array(StringEnum(TOKEN_SCOPES)),
    token_prefix: t.String({ description: 'The first characters of the token, to recognise it' }),
    created_by: t.String(),
    created_at: t.String({ format: 'date-time' }),
    expires_at: t.Nullable(t.String({ format: 'date-time' })),
    last_used_at: t.Nullable(t.String({ format: 'date-time' })),
    revoked_at: t.Nullable(t.String({ format: 'date-time' })),
  }))
  export type Token = typeof token.static

  export const created = Envelope(
    t.Object({ ...token.properties, token: t.String({ description: 'The bearer token. Shown only in this response; store it now.' }) }),
  )
  export const one = Envelope(token)
  export const page = PageEnvelope(token)
}
