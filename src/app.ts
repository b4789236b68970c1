/**
 * Builds the HTTP application from its plugins and feature modules. No listening, no process
 * concerns: tests call `createApp(context).handle(new Request('http://localhost/…'))`.
 */
import { toOpenAPISchema } from '@elysiajs/openapi'
import { type AnyElysia, Elysia } from 'elysia'
import type { AppContext } from './context'
import { httpConventions } from './lib/http'
import { artifactController } from './modules/artifact'
import { auditController } from './modules/audit'
import { createDeploymentRuntime, type DeploymentRuntime, deploymentController } from './modules/deployment'
import { commitInfraChange } from './modules/deployment/service'
import { environmentController } from './modules/environment'
import { healthController } from './modules/health'
import { infraConfigController } from './modules/infra-config'
import { configsDcmCannotInstall } from './modules/infra-config/driver-fit'
import { cronProblem } from './modules/scaling/cron'
import type { InfraConfigHooks } from './modules/infra-config/service'
import { scalingController } from './modules/scaling'
import { createScalingScheduler, type ScalingScheduler } from './modules/scaling/worker'
import { serveController } from './modules/serve'
import { tokenController } from './modules/token'
import { authenticate, touchToken } from './modules/token/service'
import { auditPlugin } from './plugins/audit'
import { authPlugin, RouteTable } from './plugins/auth'
import { docsPlugin } from './plugins/docs'
import { finishDocument } from './plugins/docs/document'
import { honoursIdempotencyKey, idempotencyPlugin } from './plugins/idempotency'
import { limitsPlugin } from './plugins/limits'
import { rateLimitPlugin } from './plugins/rate-limit'

/** The workers behind some routes: src/index.ts starts and stops them (tests drive them by hand). */
export interface AppWorkers {
  /** The rollout tracker and what deployments need. */
  deployment: DeploymentRuntime
  /** The tick behind POST /api/v1/scaling/tick (the cron job in src/index.ts runs the same one). */
  scaling: ScalingScheduler
}

export function createWorkers(context: AppContext): AppWorkers {
  return { deployment: createDeploymentRuntime(context), scaling: createScalingScheduler(context, context.clusterDrivers) }
}

export function createApp(context: AppContext, workers: AppWorkers = createWorkers(context)) {
  const { deployment, scaling } = workers
  // A PATCH of an infra config is stored with the redeploy it causes, in one step.
  const infraConfigHooks: InfraConfigHooks = {
    commitChange: async ({ audit, serve, environment, next, summary }) => ({ revision: (await commitInfraChange(deployment.deps, audit, { serve, environment }, next, summary)).revision }),
  }
  const { limits, rateLimit } = context.config
  // Every route's scope, read from the finished app (below); the auth plugin checks requests against it.
  const routes = new RouteTable()
  // /docs/json is made from the finished app, on the first request for it (every route is there by then).
  let finished: AnyElysia | undefined
  let document: object | undefined
  const documentOfApp = (): object => {
    if (!finished) throw new Error('/docs/json was requested before the app was built')
    document ??= apiDocument(finished)
    return document
  }
  const app = new Elysia({
    // Unknown fields are refused (422) instead of dropped.
    normalize: false,
    // One router: Elysia's, the one the route table reads — under Bun.serve as under app.handle().
    systemRouter: false,
    // Bun's own bound, behind the app's MAX_BODY_BYTES (src/plugins/limits).
    serve: { maxRequestBodySize: 2 * limits.maxBodyBytes },
  })
    .use(httpConventions(context.log))
    // 413 and 415 first: they cost nothing and tell nothing about the API.
    .use(limitsPlugin(limits))
    .use(
      authPlugin({
        verifyToken: (bearer, now) => authenticate(context.database.db, bearer, now),
        touchToken: (tokenId, now) => touchToken(context.database.db, tokenId, now),
        enabled: context.config.auth.enabled,
        log: context.log,
        routes,
      }),
    )
    .use(rateLimitPlugin(rateLimit))
    .use(auditPlugin({ db: context.database.db, log: context.log }))
    .use(idempotencyPlugin({ db: context.database.db, ttlHours: context.config.idempotencyTtlHours, log: context.log }))
    .use(docsPlugin({ title: 'Darwin ML Serve', specPath: '/docs/json', document: documentOfApp }))
    .use(healthController(context))
    .group('/api/v1', (api) =>
      api
        .use(environmentController(context, { configsDcmCannotInstall: (environment) => configsDcmCannotInstall(context.database.db, environment) }))
        .use(serveController(context))
        .use(infraConfigController(context, infraConfigHooks, { scheduleProblem: cronProblem }))
        .use(artifactController(context))
        .use(deploymentController(context, deployment))
        .use(tokenController(context))
        .use(auditController(context))
        .use(scalingController(context, scaling)),
    )
  // A route without a declared scope stops the app here.
  routes.bind(app)
  finished = app
  return app
}

export type App = ReturnType<typeof createApp>

const OPENAPI_VERSION = '3.1.2'

/** Everything in /docs/json but the operations and their schemas. */
const DOCUMENT_BASE = {
  openapi: OPENAPI_VERSION,
  info: {
    title: 'Darwin ML Serve',
    version: '0.1.0',
    description:
      'Control plane for ML model deployments: environments, serves, infra configs, artifacts, deployments and scheduled scaling. Every response is `{status, message, data}`; errors are `{status: "ERROR", code, message, errors?, request_id}`.',
    license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
  },
  // Relative: the document describes the server that serves it.
  servers: [{ url: '/', description: 'The server this document is served by' }],
  tags: [
    { name: 'Health', description: 'Liveness and readiness' },
    { name: 'Environment', description: 'Deployment targets: cluster, namespace, domain and network settings' },
    { name: 'Serve', description: 'Model services: name, type (api or workflow), description, space' },
    { name: 'Infra config', description: "A serve's resources per environment: backend, cores, memory, replicas, node capacity" },
    { name: 'Artifact', description: 'Deployable images of a serve: built from git by the Artifact Builder, or registered prebuilt' },
    { name: 'Deployment', description: 'Deploy, roll back, undeploy; revisions, history and live status' },
    { name: 'One-click', description: 'Deploy an MLflow model in one call' },
    { name: 'Tokens', description: 'API tokens and their scopes (admin)' },
    { name: 'Audit', description: 'Who changed what, when (admin)' },
    { name: 'Scaling', description: 'Scheduled scaling: windows of replica bounds per serve and environment, their events, the tick' },
  ],
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API token (see /api/v1/tokens)' } },
  },
  security: [{ bearer: [] }],
}

/** /docs/json of a built app: @elysiajs/openapi's generation from the routes, finished (./plugins/docs/document.ts). */
function apiDocument(app: AnyElysia) {
  return finishDocument(toOpenAPISchema(app, undefined, undefined, undefined, OPENAPI_VERSION), { base: DOCUMENT_BASE, honoursIdempotencyKey })
}
