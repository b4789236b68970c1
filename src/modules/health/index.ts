import { Elysia, status, t } from 'elysia'
import type { AppContext } from '../../context'
import { DATABASE_RETRY_AFTER_SECONDS, ErrorEnvelope } from '../../lib/http'
import { routeScopes } from '../../plugins/auth'

const tags = ['Health']
const Healthy = t.Object(
  { status: t.Literal('SUCCESS'), message: t.String() },
  { examples: [{ status: 'SUCCESS', message: 'OK' }] },
)
const healthy = { status: 'SUCCESS' as const, message: 'OK' }
const DriverAvailability = t.Object({
  usable: t.Boolean({ description: 'Whether deploys to environments using this driver can reach a cluster' }),
  detail: t.String({ description: 'Where the credentials or URL come from, or what to set' }),
})
const Ready = t.Object(
  {
    status: t.Literal('SUCCESS'),
    message: t.String(),
    data: t.Object({
      database: t.Literal('ok'),
      cluster_drivers: t.Object({ kubernetes: DriverAvailability, dcm: DriverAvailability }, { description: 'Reported, not required: readiness depends on the database only' }),
    }),
  },
  {
    examples: [
      {
        status: 'SUCCESS',
        message: 'OK',
        data: {
          database: 'ok',
          cluster_drivers: {
            kubernetes: { usable: true, detail: 'the in-cluster service account, context "inClusterContext", API server https://10.0.0.1:443' },
            dcm: { usable: true, detail: 'DCM at http://darwin-cluster-manager:8080 (DCM_URL)' },
          },
        },
      },
    ],
  },
)

/** Liveness never touches the database (a DB outage must not get pods killed); readiness does. */
export const healthController = ({ database, log, clusterDrivers }: AppContext) =>
  new Elysia({ name: 'health' })
    .use(routeScopes)
    .get('/healthcheck', () => healthy, {
      scope: 'public',
      response: { 200: Healthy },
      detail: { operationId: 'healthcheck', tags, security: [], summary: 'Liveness: the process answers (no database call)' },
    })
    .get('/health', () => healthy, {
      scope: 'public',
      response: { 200: Healthy },
      detail: { operationId: 'health', tags, security: [], summary: 'Liveness (alias kept from the original)' },
    })
    .get(
      '/readyz',
      async ({ request, set }) => {
        try {
          await database.ping()
          return { ...healthy, data: { database: 'ok' as const, cluster_drivers: clusterDrivers.availability() } }
        } catch (error) {
          log.warn('readiness: database unreachable', { error: error instanceof Error ? error.message : String(error) })
          set.headers['retry-after'] = DATABASE_RETRY_AFTER_SECONDS
          return status(503, {
            status: 'ERROR' as const,
            code: 'DATABASE_UNAVAILABLE',
            message: 'The database is unavailable',
            request_id: request.headers.get('x-request-id') ?? '',
          })
        }
      },
      {
        scope: 'public',
        response: { 200: Ready, 503: ErrorEnvelope },
        detail: { operationId: 'readiness', tags, security: [], summary: 'Readiness: 200 when the database answers, 503 when not; also reports which cluster drivers are usable' },
      },
    )
