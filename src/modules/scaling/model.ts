import { t } from 'elysia'
import { SCALING_EVENT_OUTCOMES } from '../../db/schema'
import { Envelope, PageEnvelope } from '../../lib/http'
import { PageQuery } from '../../lib/pagination'
import { Named, StringEnum } from '../../lib/schema'

const strict = { additionalProperties: false }

const cron = (description: string, example: string) => t.String({ minLength: 1, maxLength: 100, description, examples: [example] })

/** Ranges and cross-field rules are checked by validateSchedule (windows.ts), each with its field path. */
const window = t.Object(
  {
    name: t.String({ minLength: 1, maxLength: 63, description: 'Unique within the schedule', examples: ['night'] }),
    start: cron('5-field cron (minute hour day-of-month month day-of-week) on the wall clock of `timezone`: when the window opens', '0 22 * * *'),
    end: t.Optional(cron('5-field cron: the window closes at its first occurrence after the start. Give `end` or `duration_minutes`', '0 6 * * *')),
    duration_minutes: t.Optional(t.Integer({ description: 'How long the window stays open after each start, 1–10080 elapsed minutes', examples: [90] })),
    min_replicas: t.Integer({ description: 'Replica bounds while the window is open, 1–100; may be below the infra config', examples: [1] }),
    max_replicas: t.Integer({ description: 'At least min_replicas, at most 100', examples: [2] }),
  },
  strict,
)

const bounds = t.Object({ min: t.Integer(), max: t.Integer() })
const effective = t.Object({
  min: t.Integer(),
  max: t.Integer(),
  windows: t.Array(t.String(), { description: 'The windows open now; empty when the base bounds hold' }),
})

const scheduleExample = {
  timezone: 'Europe/Berlin',
  windows: [
    { name: 'night', start: '0 22 * * *', end: '0 6 * * *', min_replicas: 1, max_replicas: 2 },
    { name: 'batch', start: '30 23 * * *', duration_minutes: 90, min_replicas: 4, max_replicas: 8 },
  ],
}

export namespace ScalingModel {
  export const params = t.Object({ serve_name: t.String({ maxLength: 255 }), env: t.String({ maxLength: 255 }) })
  export const serveParams = t.Object({ serve_name: t.String({ maxLength: 255 }) })

  export const putBody = t.Object(
    {
      timezone: t.String({ minLength: 1, maxLength: 64, description: 'IANA time zone the crons are read in', examples: ['Europe/Berlin'] }),
      windows: t.Array(window, { minItems: 1, maxItems: 50 }),
    },
    { ...strict, examples: [scheduleExample] },
  )
  export type PutBody = typeof putBody.static

  export const schedule = Named('ScalingSchedule', t.Object({
    serve_name: t.String(),
    env: t.String(),
    timezone: t.String(),
    windows: t.Array(window),
    base: t.Object({ min: t.Integer(), max: t.Integer() }, { description: "The infra config's bounds: what holds outside every window" }),
    effective: t.Object(effective.properties, { description: 'The bounds that hold now; a tick applies them when they differ from `applied`' }),
    applied: t.Union([bounds, t.Null()], { description: 'The bounds last set on the cluster; null until a deploy or a tick has' }),
    created_at: t.String({ format: 'date-time' }),
    updated_at: t.String({ format: 'date-time' }),
  }))
  export type Schedule = typeof schedule.static

  export const one = Envelope(schedule, {
    serve_name: 'my-model-serve',
    env: 'prod',
    ...scheduleExample,
    base: { min: 3, max: 10 },
    effective: { min: 3, max: 10, windows: [] },
    applied: { min: 3, max: 10 },
    created_at: '2026-11-28T12:00:00.000Z',
    updated_at: '2026-11-28T12:00:00.000Z',
  })

  export const deleted = Envelope(
    t.Object({
      serve_name: t.String(),
      env: t.String(),
      restore_pending: t.Boolean({
        description: 'True when window bounds are live on the cluster: the next tick sets the base bounds back',
      }),
    }),
  )

  export const previewQuery = t.Object({
    from: t.Optional(t.String({ format: 'date-time', description: 'Start of the preview; default now' })),
    to: t.Optional(t.String({ format: 'date-time', description: 'End of the preview, at most 31 days after `from`; default `from` + 7 days' })),
  })
  export type PreviewQuery = typeof previewQuery.static

  export const preview = Named('ScalingPreview', t.Object({
    from: t.String({ format: 'date-time' }),
    to: t.String({ format: 'date-time' }),
    base: bounds,
    timeline: t.Array(
      t.Object({
        at: t.String({ format: 'date-time' }),
        min: t.Integer(),
        max: t.Integer(),
        windows: t.Array(t.String()),
        cause: t.Array(t.Object({ window: t.String(), event: StringEnum(['open', 'close'] as const) }), {
          description: 'The window edges that made this change; empty for the first entry (the state at `from`)',
        }),
      }),
    ),
  }))
  export const previewOne = Envelope(preview)

  export const eventsQuery = t.Object({
    ...PageQuery,
    env: t.Optional(t.String({ maxLength: 255, description: 'Only the events of this environment' })),
  })
  export type EventsQuery = typeof eventsQuery.static

  export const event = Named('ScalingEvent', t.Object({
    id: t.Integer(),
    serve_name: t.String(),
    env: t.String(),
    at: t.String({ format: 'date-time' }),
    from: t.Union([bounds, t.Null()]),
    to: bounds,
    windows: t.Array(t.String(), { description: 'The windows open at `at`; empty: back to the base bounds' }),
    outcome: StringEnum(SCALING_EVENT_OUTCOMES),
    error: t.Union([t.String(), t.Null()]),
  }))
  export type Event = typeof event.static
  export const events = PageEnvelope(event)

  const tickResult = t.Object({
    targets: t.Integer(),
    changed: t.Integer(),
    unchanged: t.Integer(),
    failed: t.Integer(),
    failures: t.Array(t.Object({ serve: t.String(), env: t.String(), error: t.String() })),
  })
  export const tick = Envelope(
    t.Union([
      t.Object({ ran: t.Literal(true), result: tickResult }),
      t.Object({ ran: t.Literal(false), reason: t.Literal('lease_held_elsewhere') }),
    ]),
  )
}
