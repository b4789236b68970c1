import { cron } from '@elysiajs/cron'
import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { errorResponses, mutationErrorResponses, ok, okPage } from '../../lib/http'
import { describeError, type Logger } from '../../lib/logger'
import { auditContextOf } from '../../plugins/audit'
import { routeScopes } from '../../plugins/auth'
import { recordAudit } from '../../lib/audit-log'
import { ScalingModel } from './model'
import * as service from './service'
import type { ScalingScheduler } from './worker'

const tags = ['Scaling']

/** The schedule routes, the events, and the serverless tick (which runs `scheduler`'s tick, through its lease). */
export const scalingController = ({ database }: AppContext, scheduler: ScalingScheduler) =>
  new Elysia({ name: 'scaling' })
    .use(routeScopes)
    .put(
      '/serve/:serve_name/scaling-schedule/:env',
      async ({ params, body, request, route }) =>
        ok(
          await service.putSchedule(database.db, auditContextOf(request, route), params.serve_name, params.env, body),
          'Scaling schedule saved; the next tick applies its bounds',
        ),
      {
        params: ScalingModel.params,
        body: ScalingModel.putBody,
        scope: 'deploy',
        response: { 200: ScalingModel.one, ...mutationErrorResponses(404, 409) },
        detail: {
          operationId: 'putScalingSchedule',
          tags,
          summary:
            "Create or replace a serve's scaling schedule in an environment. The cluster is not touched here: the next tick applies `effective` where it differs from `applied`",
        },
      },
    )
    .get('/serve/:serve_name/scaling-schedule/:env', async ({ params }) => ok(await service.getSchedule(database.db, params.serve_name, params.env)), {
      params: ScalingModel.params,
      scope: 'read',
      response: { 200: ScalingModel.one, ...errorResponses(404, 409) },
      detail: { operationId: 'getScalingSchedule', tags, summary: "A serve's scaling schedule in an environment, with its base, effective and applied bounds" },
    })
    .delete(
      '/serve/:serve_name/scaling-schedule/:env',
      async ({ params, request, route }) => {
        const { restorePending } = await service.deleteSchedule(database.db, auditContextOf(request, route), params.serve_name, params.env)
        return ok({ serve_name: params.serve_name, env: params.env, restore_pending: restorePending }, 'Scaling schedule deleted')
      },
      {
        params: ScalingModel.params,
        scope: 'deploy',
        response: { 200: ScalingModel.deleted, ...mutationErrorResponses(404, 409) },
        detail: { operationId: 'deleteScalingSchedule', tags, summary: 'Delete a scaling schedule; if window bounds are live, the next tick sets the base bounds back' },
      },
    )
    .get(
      '/serve/:serve_name/scaling-schedule/:env/preview',
      async ({ params, query }) => ok(await service.previewSchedule(database.db, params.serve_name, params.env, query)),
      {
        params: ScalingModel.params,
        query: ScalingModel.previewQuery,
        scope: 'read',
        response: { 200: ScalingModel.previewOne, ...errorResponses(404, 409) },
        detail: {
          operationId: 'previewScalingSchedule',
          tags,
          summary: `The effective bounds over [from, to] (default now to now + 7 days, at most ${service.MAX_PREVIEW_DAYS} days): the state at \`from\`, then every change with the window edges that caused it`,
        },
      },
    )
    .get(
      '/serve/:serve_name/scaling-events',
      async ({ params, query }) => okPage(await service.listScalingEvents(database.db, params.serve_name, query)),
      {
        params: ScalingModel.serveParams,
        query: ScalingModel.eventsQuery,
        scope: 'read',
        response: { 200: ScalingModel.events, ...errorResponses(404) },
        detail: { operationId: 'listScalingEvents', tags, summary: 'The bounds changes ticks made (or failed to make) for a serve, newest first, paginated' },
      },
    )
    .post(
      '/scaling/tick',
      async ({ request, route }) => {
        const outcome = await scheduler.tick()
        // What the tick changed is in scaling_events, per serve; the audit log records who triggered it.
        const summary = outcome.ran ? { ran: true, targets: outcome.result.targets, changed: outcome.result.changed, failed: outcome.result.failed } : { ran: false }
        await recordAudit(database.db, auditContextOf(request, route), { resourceType: 'scaling', resourceName: 'tick', statusCode: 200, summary })
        return ok(outcome, 'Tick done')
      },
      {
      scope: 'deploy',
      response: { 200: ScalingModel.tick, ...mutationErrorResponses(409) },
      detail: {
        operationId: 'runScalingTick',
        tags,
        summary:
          'Run one scaling tick now, for platforms that call a URL on a schedule. Through the same lease as the in-process job: `ran: false` when another replica holds it',
      },
      },
    )

/** The in-process job: ticks on `pattern` (UTC); a tick still running when the next is due makes that one skip. */
export const scalingCronJob = (scheduler: ScalingScheduler, pattern: string, log: Logger) =>
  new Elysia({ name: 'scaling-cron' }).use(
    cron({
      name: 'scaling',
      pattern,
      timezone: 'UTC',
      protect: true,
      run: async () => {
        try {
          await scheduler.tick()
        } catch (error) {
          log.error('scaling tick failed', describeError(error))
        }
      },
    }),
  )
