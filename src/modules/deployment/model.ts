import { withHeaders } from '@elysiajs/openapi'
import { t } from 'elysia'
import { InfraConfigModel } from '../infra-config/model'
import { CANARY_PHASES, DEPLOYMENT_EVENT_KINDS, DEPLOYMENT_REASONS, DEPLOYMENT_STATUSES, DEPLOYMENT_STRATEGIES } from '../../db/schema'
import { Envelope, PageEnvelope } from '../../lib/http'
import { PageQuery } from '../../lib/pagination'
import { Named, StringEnum } from '../../lib/schema'
import { artifactVersion } from '../artifact/model'
import { nodeCapacityType } from '../infra-config/model'
import { serveName } from '../serve/model'

const strict = { additionalProperties: false }
const ENV_VAR_NAME = '^[A-Za-z_][A-Za-z0-9_]{0,127}$'
const surge = t.Union([t.Integer({ minimum: 0, maximum: 1000 }), t.String({ pattern: '^(100|[1-9]?[0-9])%$' })])

/** The canary defaults: what a `canary` block leaves out. */
export const CANARY_DEFAULTS = { steps: [10, 50, 100], step_seconds: 60, max_restarts: 0, ready_timeout_seconds: 300 } as const

const canaryFields = {
  steps: t.Array(t.Integer({ minimum: 1, maximum: 100 }), {
    minItems: 1,
    maxItems: 10,
    description: 'Traffic percentages of the canary, ascending; the last is 100 (the full promotion). Default [10, 50, 100]',
  }),
  step_seconds: t.Integer({ minimum: 0, maximum: 86_400, description: 'How long the canary must stay healthy at a step before the next. Default 60' }),
  max_restarts: t.Integer({ minimum: 0, maximum: 1000, description: "Restarts of the canary's containers tolerated before it is rolled back. Default 0" }),
  ready_timeout_seconds: t.Integer({ minimum: 10, maximum: 3600, description: "How long the canary's pods may take to be ready at a step before it is rolled back. Default 300" }),
}

export namespace DeploymentModel {
  export const canaryBody = Named(
    'CanaryConfigInput',
    t.Object(
      { steps: t.Optional(canaryFields.steps), step_seconds: t.Optional(canaryFields.step_seconds), max_restarts: t.Optional(canaryFields.max_restarts), ready_timeout_seconds: t.Optional(canaryFields.ready_timeout_seconds) },
      { ...strict, description: 'With deployment_strategy canary (kubernetes environments): how traffic moves to the new revision' },
    ),
  )
  export const canaryConfig = Named('CanaryConfig', t.Object(canaryFields, { description: 'The canary settings the revision runs with' }))

  export const deploymentConfig = t.Object(
    {
      deployment_strategy: t.Optional(
        StringEnum(DEPLOYMENT_STRATEGIES, { description: 'Default rolling. canary: the new revision runs beside the active one and takes traffic step by step (README "Progressive delivery")' }),
      ),
      max_surge: t.Optional(surge),
      max_unavailable: t.Optional(surge),
      auto_rollback: t.Optional(t.Boolean({ description: 'Default true: a rollout that fails returns to the active revision by itself (a first deploy is removed). false keeps a failed rollout as it failed' })),
      canary: t.Optional(canaryBody),
      environment_variables: t.Optional(
        t.Record(t.String({ pattern: ENV_VAR_NAME }), t.String({ maxLength: 32_768 }), {
          description: 'Passed to the container; keys are upper-cased as in the original',
          maxProperties: 200,
          additionalProperties: false,
        }),
      ),
    },
    strict,
  )
  export type DeploymentConfigBody = typeof deploymentConfig.static

  export const serveParams = t.Object({ serve_name: t.String({ maxLength: 255 }) })
  export const envParams = t.Object({ serve_name: t.String({ maxLength: 255 }), env: t.String({ maxLength: 255 }) })
  export const revisionParams = t.Object({ serve_name: t.String({ maxLength: 255 }), revision: t.Integer({ minimum: 1 }) })

  export const deployBody = t.Object(
    {
      env: t.String({ maxLength: 255, examples: ['prod'] }),
      artifact_version: t.String({ minLength: 1, maxLength: 64, examples: ['v1.0.0'] }),
      api_serve_deployment_config: t.Optional(deploymentConfig),
      dry_run: t.Optional(t.Boolean({ description: 'Return the manifests and a diff against the active revision; apply and record nothing' })),
    },
    {
      ...strict,
      examples: [
        {
          env: 'prod',
          artifact_version: 'v1.0.0',
          api_serve_deployment_config: { deployment_strategy: 'rolling', environment_variables: { MODEL_PATH: '/models/production' } },
        },
      ],
    },
  )
  export type DeployBody = typeof deployBody.static

  export const waitQuery = t.Object({
    wait: t.Optional(t.Integer({ minimum: 0, maximum: 1800, description: 'Seconds to block until the rollout ends (then 200, or 504 with the current status)' })),
  })

  export const envBody = t.Object({ env: t.String({ maxLength: 255, examples: ['prod'] }) }, strict)
  export const rollbackBody = t.Object(
    {
      env: t.String({ maxLength: 255, examples: ['prod'] }),
      revision: t.Optional(t.Integer({ minimum: 1, description: 'Default: the last revision that was active before the current one' })),
      force: t.Optional(t.Boolean({ description: 'Roll back to a revision that failed or was cancelled (refused with 409 REVISION_FAILED otherwise); default false' })),
    },
    strict,
  )
  export type RollbackBody = typeof rollbackBody.static

  export const historyQuery = t.Object({
    ...PageQuery,
    env: t.Optional(t.String({ maxLength: 255 })),
    status: t.Optional(StringEnum(DEPLOYMENT_STATUSES)),
  })
  export type HistoryQuery = typeof historyQuery.static

  export const revision = Named('Revision', t.Object({
    revision: t.Integer(),
    serve_name: t.String(),
    env: t.String(),
    status: StringEnum(DEPLOYMENT_STATUSES),
    reason: StringEnum(DEPLOYMENT_REASONS),
    rolled_back_from: t.Nullable(t.Integer()),
    rolled_back_to: t.Nullable(t.Integer({ description: 'For a revision that failed and was rolled back automatically: the revision serving in its place (the `auto-rollback` revision, or the stable revision a canary returned to)' })),
    artifact_version: t.String(),
    image: t.String(),
    api_serve_deployment_config: t.Object({
      deployment_strategy: StringEnum(DEPLOYMENT_STRATEGIES),
      max_surge: t.Optional(surge),
      max_unavailable: t.Optional(surge),
      environment_variables: t.Record(t.String(), t.String()),
      auto_rollback: t.Optional(t.Boolean()),
      canary: t.Optional(canaryConfig),
    }),
    infra_snapshot: Named(
      'InfraSnapshot',
      t.Union([InfraConfigModel.apiServeInfraConfigAnswered, InfraConfigModel.workflowServeConfig], {
        description: "The infra config the revision was made with: an api serve's, or a workflow serve's",
      }),
    ),
    service_url: t.String(),
    failure_reason: t.Nullable(t.String()),
    created_by: t.String(),
    created_at: t.String({ format: 'date-time' }),
    updated_at: t.String({ format: 'date-time' }),
    activated_at: t.Nullable(t.String({ format: 'date-time' })),
    ended_at: t.Nullable(t.String({ format: 'date-time' })),
  }))
  export type Revision = typeof revision.static

  export const event = Named(
    'DeploymentEvent',
    t.Object({
      at: t.String({ format: 'date-time' }),
      kind: StringEnum(DEPLOYMENT_EVENT_KINDS),
      weight: t.Nullable(t.Integer({ description: "The canary's traffic share after the event" })),
      actor: t.String({ description: 'Who decided: a token\'s name, or rollout-tracker' }),
      detail: t.String(),
    }),
  )
  export const revisionWithManifests = t.Object({
    ...revision.properties,
    manifests: t.String({ description: 'The applied manifests, as YAML' }),
    events: t.Array(event, { description: 'What happened to the revision after it was recorded, oldest first: canary steps, automatic rollbacks and removals' }),
  })

  const revisionExample = {
    revision: 3,
    serve_name: 'my-model-serve',
    env: 'prod',
    status: 'deploying',
    reason: 'deploy',
    rolled_back_from: null,
    rolled_back_to: null,
    artifact_version: 'v1.0.0',
    image: 'docker.io/darwin:my-model-serve_v1.0.0',
    api_serve_deployment_config: { deployment_strategy: 'rolling', environment_variables: { MODEL_PATH: '/models/production' } },
    infra_snapshot: { backend_type: 'fastapi', cores: 4, memory: 8, min_replicas: 2, max_replicas: 10, node_capacity_type: 'spot', target_cpu_utilization: 70, additional_hosts: [] },
    service_url: 'https://my-model-serve.mycompany.com',
    failure_reason: null,
    created_by: 'ci-pipeline',
    created_at: '2026-11-28T12:00:00.000Z',
    updated_at: '2026-11-28T12:00:00.000Z',
    activated_at: null,
    ended_at: null,
  }
  export const one = Envelope(revision, revisionExample)
  /** 201: the revision recorded, rolling out; `Location` is where to follow it. */
  export const created = withHeaders(one, {
    location: t.String({ description: 'The revision: GET it to follow the rollout', examples: ['/api/v1/serve/my-model-serve/deployments/3'] }),
  })
  export const oneWithManifests = Envelope(revisionWithManifests)
  export const page = PageEnvelope(revision)
  export const dryRun = Envelope(
    t.Object({
      dry_run: t.Literal(true),
      manifests: t.String({ description: 'What would be applied, as YAML' }),
      diff: t.String({ description: 'Unified diff against the active revision (everything is new when none is active)' }),
      active_revision: t.Nullable(t.Integer()),
    }),
  )

  export const rollout = Named('Rollout', t.Object({
    phase: t.String(),
    desired_replicas: t.Integer(),
    updated_replicas: t.Integer(),
    ready_replicas: t.Integer(),
    available_replicas: t.Integer(),
    failure_reason: t.Optional(t.String()),
  }))
  export type Rollout = typeof rollout.static
  export const canaryProgress = Named(
    'CanaryProgress',
    t.Object({
      phase: StringEnum(CANARY_PHASES, { description: 'stepping: beside the stable revision at `weight` %; promoting: rolling out as a whole' }),
      step: t.Integer({ minimum: 1, description: 'The step it is at, 1-based' }),
      steps: t.Array(t.Integer()),
      weight: t.Integer({ minimum: 0, maximum: 100, description: 'Percent of the traffic the canary takes (by replica proportion without Istio: approximate)' }),
      canary_replicas: t.Integer(),
      stable_revision: t.Integer({ description: 'The active revision the canary runs beside' }),
      step_started_at: t.String({ format: 'date-time' }),
      healthy_since: t.Nullable(t.String({ format: 'date-time' })),
      step_seconds: t.Integer(),
      next_step_in_seconds: t.Nullable(t.Integer({ description: 'Seconds until the next step while healthy; null while not (yet) healthy' })),
      health: t.Nullable(
        t.Object({
          ready_replicas: t.Integer(),
          desired_replicas: t.Integer(),
          restarts: t.Integer(),
          healthy: t.Boolean(),
          problem: t.Optional(t.String({ description: 'Why the canary is rolled back (or held, with auto_rollback false)' })),
        }),
      ),
    }),
  )
  export type CanaryProgress = typeof canaryProgress.static
  export const promoteBody = t.Object(
    { full: t.Optional(t.Boolean({ description: 'Straight to 100 % (the full promotion) instead of the next step; default false' })) },
    strict,
  )

  export const current = Envelope(
    t.Object({
      serve_name: t.String(),
      env: t.String(),
      active: t.Nullable(revision),
      in_flight: t.Nullable(revision),
      canary: t.Nullable(canaryProgress),
      rollout: t.Nullable(rollout),
      rollout_error: t.Optional(t.String({ description: 'Why live progress could not be read from the cluster' })),
    }),
  )
  export const readiness = Envelope(t.Object({ status: StringEnum(['READY', 'NOT_READY'] as const) }), { status: 'READY' })
  export const undeployed = Envelope(
    t.Object({ serve_name: t.String(), env: t.String(), undeployed_revision: t.Nullable(t.Integer()) }),
  )

  /** One-click MLflow model deployment, as in the seed README. */
  export const deployModelBody = t.Object(
    {
      serve_name: serveName,
      artifact_version: t.Optional({ ...artifactVersion, description: 'The version the model\'s artifact is registered under (as the original requires); default: derived from model_uri, so the same model maps to the same version' }),
      model_uri: t.String({ maxLength: 1024, examples: ['mlflow-artifacts:/45/0123456789abcdef0123456789abcdef/artifacts/model'] }),
      env: t.String({ maxLength: 255, examples: ['prod'] }),
      cores: t.Optional(t.Number({ minimum: 1, maximum: 64, default: 1 })),
      memory: t.Optional(t.Number({ minimum: 1, maximum: 512, default: 2, description: 'GiB' })),
      node_capacity: t.Optional(nodeCapacityType),
      min_replicas: t.Optional(t.Integer({ minimum: 1, maximum: 100 })),
      max_replicas: t.Optional(t.Integer({ minimum: 1, maximum: 100 })),
      environment_variables: t.Optional(t.Record(t.String({ pattern: ENV_VAR_NAME }), t.String({ maxLength: 32_768 }), { maxProperties: 200, additionalProperties: false })),
    },
    {
      ...strict,
      examples: [
        {
          serve_name: 'my-model',
          model_uri: 'mlflow-artifacts:/45/0123456789abcdef0123456789abcdef/artifacts/model',
          env: 'prod',
          cores: 4,
          memory: 8,
          node_capacity: 'spot',
          min_replicas: 1,
          max_replicas: 3,
        },
      ],
    },
  )
  export type DeployModelBody = typeof deployModelBody.static
  export const undeployModelBody = t.Object(
    {
      serve_name: t.String({ maxLength: 255 }),
      env: t.String({ maxLength: 255 }),
      artifact_version: t.Optional(t.String({ maxLength: 255, description: 'Accepted as the original\'s clients send it; not needed to undeploy' })),
    },
    strict,
  )
}
