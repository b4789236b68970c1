import { t } from 'elysia'
import { BACKEND_TYPES, NODE_CAPACITY_TYPES, SERVE_TYPES } from '../../db/schema'
import { Envelope } from '../../lib/http'
import { Named, StringEnum, StringEnumWithAliases } from '../../lib/schema'
import { DEFAULT_TARGET_CPU_UTILIZATION } from '../placement/revision-inputs'

export { DEFAULT_TARGET_CPU_UTILIZATION }

/** Limits shared by API serves and workflow node groups (cores and memory may be fractional). */
const cores = (description = 'CPU cores per pod, 0.1–64 (fractions allowed: 0.5 = 500m)') =>
  t.Number({ minimum: 0.1, maximum: 64, description, examples: [4] })
const memory = (description = 'Memory per pod in GiB, 0.25–512 (fractions allowed: 0.5 = 512Mi)') =>
  t.Number({ minimum: 0.25, maximum: 512, description, examples: [8] })
/** `on-demand` is the original's spelling: accepted, stored and answered as `ondemand`. */
export const nodeCapacityType = StringEnumWithAliases(NODE_CAPACITY_TYPES, { 'on-demand': 'ondemand' }, { description: 'Run on `spot` or `ondemand` nodes (`on-demand` is accepted too)' })

const HOSTNAME = '^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$'

const apiFields = {
  backend_type: StringEnum(BACKEND_TYPES, { description: '`fastapi` or `ray` (Ray Serve)' }),
  cores: cores(),
  memory: memory(),
  min_replicas: t.Integer({ minimum: 0, maximum: 100, description: 'At most max_replicas; 0 only with backend_type ray (no Ray workers at rest); fastapi: at least 1, as an autoscaler cannot scale to 0', examples: [2] }),
  max_replicas: t.Integer({ minimum: 1, maximum: 100, description: '1–100, at least min_replicas', examples: [10] }),
  node_capacity_type: nodeCapacityType,
  target_cpu_utilization: t.Integer({
    minimum: 1,
    maximum: 100,
    description: `The autoscaler's target average CPU utilisation, in %; default ${DEFAULT_TARGET_CPU_UTILIZATION}`,
    examples: [DEFAULT_TARGET_CPU_UTILIZATION],
  }),
  additional_hosts: t.Array(t.String({ pattern: HOSTNAME, description: 'A lowercase DNS name' }), {
    maxItems: 10,
    description: 'Extra ingress hostnames besides `{serve}{domain_suffix}`; default none',
  }),
}

const strict = { additionalProperties: false }

const workerNode = t.Object(
  {
    cores_per_pods: cores('CPU cores per worker pod, 0.1–64'),
    memory_per_pods: memory('Memory per worker pod in GiB, 0.25–512'),
    min_pods: t.Integer({ minimum: 0, maximum: 100, description: 'At least 0, at most max_pods' }),
    max_pods: t.Integer({ minimum: 1, maximum: 100, description: '1–100, at least min_pods' }),
    node_capacity_type: nodeCapacityType,
  },
  strict,
)
const headNode = t.Object({ cores: cores('CPU cores of the head pod, 0.1–64'), memory: memory('Memory of the head pod in GiB, 0.25–512'), node_capacity_type: nodeCapacityType }, strict)
const schedule = t.String({
  pattern: '^\\S+( \\S+){4}$',
  maxLength: 100,
  description: 'When the workflow runs: a 5-field cron expression (minute hour day month weekday), UTC',
  examples: ['0 2 * * *'],
})

export namespace InfraConfigModel {
  export const params = t.Object({ serve_name: t.String({ maxLength: 255 }), env: t.String({ maxLength: 255 }) })
  export const serveParams = t.Object({ serve_name: t.String({ maxLength: 255 }) })

  /** The seed's flat form: every field of an API serve's config in one object. */
  export const apiServeInfraConfig = t.Object(
    {
      backend_type: apiFields.backend_type,
      cores: apiFields.cores,
      memory: apiFields.memory,
      min_replicas: apiFields.min_replicas,
      max_replicas: apiFields.max_replicas,
      node_capacity_type: apiFields.node_capacity_type,
      target_cpu_utilization: t.Optional(apiFields.target_cpu_utilization),
      additional_hosts: t.Optional(apiFields.additional_hosts),
    },
    strict,
  )
  export type ApiServeInfraConfig = Required<typeof apiServeInfraConfig.static>
  export const partialApiServeInfraConfig = t.Partial(apiServeInfraConfig, strict)
  export type PartialApiServeInfraConfig = typeof partialApiServeInfraConfig.static

  const fastApiConfig = t.Object(
    {
      cores: apiFields.cores,
      memory: apiFields.memory,
      min_replicas: apiFields.min_replicas,
      max_replicas: apiFields.max_replicas,
      node_capacity_type: apiFields.node_capacity_type,
      target_cpu_utilization: t.Optional(apiFields.target_cpu_utilization),
    },
    strict,
  )
  /** The original's nested form, accepted as well. */
  export const apiServeConfig = t.Object(
    { backend_type: apiFields.backend_type, additional_hosts: t.Optional(apiFields.additional_hosts), fast_api_config: fastApiConfig },
    strict,
  )
  export const partialApiServeConfig = t.Object(
    {
      backend_type: t.Optional(apiFields.backend_type),
      additional_hosts: t.Optional(apiFields.additional_hosts),
      fast_api_config: t.Optional(t.Partial(fastApiConfig, strict)),
    },
    strict,
  )
  export type PartialApiServeConfig = typeof partialApiServeConfig.static

  export const workflowServeConfig = Named('WorkflowServeConfig', t.Object(
    { schedule, head_node_config: headNode, worker_node_config: t.Array(workerNode, { minItems: 1, maxItems: 20 }) },
    strict,
  ))
  export type WorkflowServeConfig = typeof workflowServeConfig.static
  /** PATCH: `schedule` and `worker_node_config` replace the stored ones; `head_node_config` is merged. */
  export const partialWorkflowServeConfig = t.Object(
    {
      schedule: t.Optional(schedule),
      head_node_config: t.Optional(t.Partial(headNode, strict)),
      worker_node_config: t.Optional(t.Array(workerNode, { minItems: 1, maxItems: 20 })),
    },
    strict,
  )
  export type PartialWorkflowServeConfig = typeof partialWorkflowServeConfig.static

  const apiExample = { backend_type: 'fastapi', cores: 4, memory: 8, min_replicas: 2, max_replicas: 10, node_capacity_type: 'spot' }
  const workflowExample = {
    schedule: '0 2 * * *',
    head_node_config: { cores: 2, memory: 4, node_capacity_type: 'ondemand' },
    worker_node_config: [{ cores_per_pods: 4, memory_per_pods: 16, min_pods: 1, max_pods: 4, node_capacity_type: 'spot' }],
  }

  const oneOfDescription =
    'Give exactly one: `api_serve_infra_config` (seed form) or `api_serve_config` (original form) for api serves, `workflow_serve_config` for workflow serves.'
  /**
   * The same rule as JSON Schema, for /docs/json and generated clients. Not a TypeBox keyword, so
   * requests are not validated by it: the service checks it, naming the serve's type in its error.
   */
  const exactlyOneForm = { oneOf: [{ required: ['api_serve_infra_config'] }, { required: ['api_serve_config'] }, { required: ['workflow_serve_config'] }] }

  export const createBody = t.Object(
    {
      api_serve_infra_config: t.Optional(apiServeInfraConfig),
      api_serve_config: t.Optional(apiServeConfig),
      workflow_serve_config: t.Optional(workflowServeConfig),
    },
    {
      ...strict,
      ...exactlyOneForm,
      description: oneOfDescription,
      examples: [{ api_serve_infra_config: apiExample }, { workflow_serve_config: workflowExample }],
    },
  )
  export type CreateBody = typeof createBody.static

  export const updateBody = t.Object(
    {
      api_serve_infra_config: t.Optional(partialApiServeInfraConfig),
      api_serve_config: t.Optional(partialApiServeConfig),
      workflow_serve_config: t.Optional(partialWorkflowServeConfig),
    },
    {
      ...strict,
      ...exactlyOneForm,
      description: `${oneOfDescription} Only the given fields change; the merged result is validated again.`,
      examples: [{ api_serve_infra_config: { min_replicas: 5, max_replicas: 20, cores: 8, memory: 16 } }],
    },
  )
  export type UpdateBody = typeof updateBody.static

  /** An api serve's config as answered: every field, defaults filled in. */
  export const apiServeInfraConfigAnswered = Named('ApiServeInfraConfig', t.Required(apiServeInfraConfig))

  export const infraConfig = Named('InfraConfig', t.Object({
    serve_name: t.String(),
    env: t.String(),
    serve_type: StringEnum(SERVE_TYPES),
    api_serve_infra_config: t.Union([apiServeInfraConfigAnswered, t.Null()], { description: 'For api serves; null for workflow serves' }),
    workflow_serve_config: t.Union([workflowServeConfig, t.Null()], { description: 'For workflow serves; null for api serves' }),
    backend_type: t.Optional(StringEnum(BACKEND_TYPES, { description: "api serves: the original's field, the same as api_serve_infra_config.backend_type" })),
    fast_api_config: t.Optional(
      t.Object(
        {
          cores: t.Number(),
          memory: t.Number(),
          min_replicas: t.Integer(),
          max_replicas: t.Integer(),
          node_capacity_type: StringEnum(NODE_CAPACITY_TYPES),
          target_cpu_utilization: t.Integer(),
        },
        { description: "api serves: the original's shape of the same config, as its clients read it" },
      ),
    ),
    created_at: t.String({ format: 'date-time' }),
    updated_at: t.String({ format: 'date-time' }),
  }))
  export type InfraConfig = typeof infraConfig.static

  const example = {
    serve_name: 'my-model-serve',
    env: 'prod',
    serve_type: 'api',
    api_serve_infra_config: { ...apiExample, target_cpu_utilization: DEFAULT_TARGET_CPU_UTILIZATION, additional_hosts: [] },
    workflow_serve_config: null,
    created_at: '2026-11-28T12:00:00.000Z',
    updated_at: '2026-11-28T12:00:00.000Z',
  }
  export const one = Envelope(infraConfig, example)
  export const updated = Envelope(
    t.Object({
      ...infraConfig.properties,
      started_revision: t.Union([t.Integer(), t.Null()], { description: 'The revision this change started (the serve is deployed here), or null' }),
    }),
    { ...example, started_revision: 7 },
  )
  export const all = Envelope(t.Array(infraConfig), [example])
}
