import { t } from 'elysia'
import { SERVE_TYPES } from '../../db/schema'
import { Envelope, PageEnvelope } from '../../lib/http'
import { PageQuery } from '../../lib/pagination'
import { Named, StringEnum } from '../../lib/schema'

/**
 * A DNS-1035 label of 1–32 characters: the name becomes Kubernetes object names, hostnames and the
 * Helm release `{env}-{serve}`, which must stay ≤ 53 characters with environment names ≤ 20.
 */
export const SERVE_NAME_PATTERN = '^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$'

export const serveName = t.String({
  pattern: SERVE_NAME_PATTERN,
  description:
    'Lowercase letters, digits and "-", starting with a letter, ending with a letter or digit, 1–32 characters (it becomes Kubernetes names and hostnames; `{env}-{serve}` stays ≤ 53)',
  examples: ['my-model-serve'],
})

const description = t.String({ maxLength: 1024, examples: ['Production model serving'] })
const space = t.String({
  pattern: '^[A-Za-z0-9._-]{0,100}$',
  description: 'The team or project owning the serve: letters, digits, ".", "_", "-"; may be empty',
  examples: ['ml-team'],
})

const strict = { additionalProperties: false }

export namespace ServeModel {
  export const params = t.Object({ serve_name: t.String({ maxLength: 255 }) })

  export const createBody = t.Object(
    {
      name: serveName,
      type: StringEnum(SERVE_TYPES, { description: '`api` (an HTTP service) or `workflow` (a scheduled Ray job cluster)' }),
      description: t.Optional(description),
      space: t.Optional(space),
    },
    { ...strict, examples: [{ name: 'my-model-serve', type: 'api', description: 'Production model serving', space: 'ml-team' }] },
  )
  export type CreateBody = typeof createBody.static

  export const updateBody = t.Object(
    { description: t.Optional(description), space: t.Optional(space) },
    { ...strict, examples: [{ description: 'Fraud scoring, v2 features' }] },
  )
  export type UpdateBody = typeof updateBody.static

  export const listQuery = t.Object({
    ...PageQuery,
    space: t.Optional(t.String({ maxLength: 100, description: 'Only serves of this space' })),
    type: t.Optional(StringEnum(SERVE_TYPES, { description: 'Only serves of this type' })),
    name_prefix: t.Optional(t.String({ maxLength: 32, description: 'Only serves whose name starts with this' })),
  })
  export type ListQuery = typeof listQuery.static

  export const serve = Named('Serve', t.Object({
    id: t.Integer(),
    name: t.String(),
    type: StringEnum(SERVE_TYPES),
    description: t.String(),
    space: t.String(),
    created_at: t.String({ format: 'date-time' }),
    updated_at: t.String({ format: 'date-time' }),
  }))
  export type Serve = typeof serve.static

  export const example = {
    id: 1,
    name: 'my-model-serve',
    type: 'api',
    description: 'Production model serving',
    space: 'ml-team',
    created_at: '2026-11-28T12:00:00.000Z',
    updated_at: '2026-11-28T12:00:00.000Z',
  }
  export const one = Envelope(serve, example)
  export const page = PageEnvelope(serve)
  export const deleted = Envelope(t.Object({ name: t.String() }), { name: 'my-model-serve' })
}
