import { Elysia, status, t } from 'elysia'
import type { AppContext } from '../../context'
import { ErrorEnvelope } from '../../lib/http'

const tags = ['Health']
const Healthy = t.Object(
  { status: t.Literal('SUCCESS'), message: t.String() },
  { examples: [{ status: 'SUCCESS', message: 'OK' }] },
)
const healthy = { status: 'SUCCESS' as const, message: 'OK' }

/** Liveness never touches the database (a DB outage must not get pods killed); readiness does. */
export const healthController = ({ database, log }: AppContext) =>
  new Elysia({ name: 'health' })
    .get('/healthcheck', () => healthy, {
      response: { 200: Healthy },
      detail: { tags, summary: 'Liveness: the process answers (no database call)' },
    })
    .get('/health', () => healthy, {
      response: { 200: Healthy },
      detail: { tags, summary: 'Liveness (alias kept from the original)' },
    })
    .get(
      '/readyz',
      async ({ request }) => {
        try {
          await database.ping()
          return healthy
        } catch (error) {
          log.warn('readiness: database unreachable', { error: error instanceof Error ? error.message : String(error) })
          return status(503, {
            status: 'ERROR' as const,
            code: 'DATABASE_UNAVAILABLE',
            message: 'The database is unavailable',
            request_id: request.headers.get('x-request-id') ?? '',
          })
        }
      },
      {
        response: { 200: Healthy, 503: ErrorEnvelope },
        detail: { tags, summary: 'Readiness: 200 when the database answers, 503 when not' },
      },
    )
