import { t } from 'elysia'
import { Named, StringEnum } from '../../lib/schema'
import { CLUSTER_DRIVERS } from '../../db/schema'
import { Envelope, PageEnvelope } from '../../lib/http'
import { PageQuery } from '../../lib/pagination'

/** Lowercase DNS label, 1–20 characters: it is joined with serve names into Kubernetes names (≤ 63). */
export const ENVIRONMENT_NAME_PATTERN = '^[a-z]([-a-z0-9]{0,18}[a-z0-9])?$'
const DNS_LABEL = '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'
/** A DNS suffix, or empty: serves of an environment without a domain are reached by path (`/{serve}` on the ingress). */
const DOMAIN_SUFFIX = '^(\\.?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*)?$'

const environmentName = t.String({
  pattern: ENVIRONMENT_NAME_PATTERN,
  description: 'Lowercase letters, digits and "-", starting with a letter, ending with a letter or digit, 1–20 characters',
  examples: ['prod'],
})

const configFields = {
  domain_suffix: t.String({
    pattern: DOMAIN_SUFFIX,
    maxLength: 253,
    description: 'Appended to the serve name to form its host, e.g. ".mycompany.com"; empty: serves are reached by path, `/{serve_name}` on the ingress',
    examples: ['.mycompany.com'],
  }),
  cluster_name: t.String({ minLength: 1, maxLength: 253, examples: ['prod-k8s-cluster'] }),
  namespace: t.String({ pattern: DNS_LABEL, description: 'Kubernetes namespace (DNS label)', examples: ['ml-serve'] }),
  security_group: t.String({ maxLength: 1024, description: 'AWS security groups, comma-separated; may be empty' }),
  subnets: t.String({ maxLength: 1024, description: 'AWS subnets for the ALB, comma-separated; defaults to empty' }),
  ft_redis_url: t.String({ maxLength: 1024, description: 'Feature-store Redis URL; may be empty' }),
  workflow_url: t.String({ maxLength: 1024, description: 'Workflow service URL; may be empty' }),
  cluster_driver: StringEnum(CLUSTER_DRIVERS, {
    description: 'How manifests reach the cluster: the Kubernetes API directly, or DCM. Default kubernetes',
  }),
  kube_context: t.String({ maxLength: 253, description: 'kubeconfig context for the kubernetes driver; empty = in-cluster or current' }),
}

const strict = { additionalProperties: false }

export namespace EnvironmentModel {
  export const configs = t.Object(
    {
      domain_suffix: configFields.domain_suffix,
      cluster_name: configFields.cluster_name,
      namespace: configFields.namespace,
      security_group: configFields.security_group,
      subnets: t.Optional(configFields.subnets),
      ft_redis_url: configFields.ft_redis_url,
      workflow_url: configFields.workflow_url,
      cluster_driver: t.Optional(configFields.cluster_driver),
      kube_context: t.Optional(configFields.kube_context),
    },
    strict,
  )
  export type Configs = typeof configs.static

  export const partialConfigs = t.Partial(configs, strict)
  export type PartialConfigs = typeof partialConfigs.static

  export const params = t.Object({ environment_name: t.String({ maxLength: 255 }) })

  export const createBody = t.Object(
    { name: environmentName, environment_configs: configs },
    {
      ...strict,
      examples: [
        {
          name: 'prod',
          environment_configs: {
            domain_suffix: '.mycompany.com',
            cluster_name: 'prod-k8s-cluster',
            namespace: 'ml-serve',
            security_group: 'sg-12345, sg-67890',
            subnets: 'subnet-abc123, subnet-def456',
            ft_redis_url: 'redis://prod-redis:6379',
            workflow_url: 'http://workflow-service:8080',
          },
        },
      ],
    },
  )
  export type CreateBody = typeof createBody.static

  /** The seed's nested form, or the original's flat one (the config fields at the top level). */
  export const updateBody = t.Object(
    { environment_configs: t.Optional(partialConfigs), ...t.Partial(configs).properties },
    { ...strict, examples: [{ environment_configs: { domain_suffix: '.updated-domain.com' } }] },
  )
  export type UpdateBody = typeof updateBody.static

  export const listQuery = t.Object({
    ...PageQuery,
    name_prefix: t.Optional(t.String({ maxLength: 63, description: 'Only environments whose name starts with this' })),
  })
  export type ListQuery = typeof listQuery.static

  export const environment = Named('Environment', t.Object({
    id: t.Integer(),
    name: t.String(),
    environment_configs: Named('EnvironmentConfigs', t.Required(configs)),
    created_at: t.String({ format: 'date-time' }),
    updated_at: t.String({ format: 'date-time' }),
  }))
  export type Environment = typeof environment.static

  const example = {
    id: 1,
    name: 'prod',
    environment_configs: {
      domain_suffix: '.mycompany.com',
      cluster_name: 'prod-k8s-cluster',
      namespace: 'ml-serve',
      security_group: 'sg-12345, sg-67890',
      subnets: 'subnet-abc123, subnet-def456',
      ft_redis_url: 'redis://prod-redis:6379',
      workflow_url: 'http://workflow-service:8080',
      cluster_driver: 'kubernetes',
      kube_context: '',
    },
    created_at: '2026-11-28T12:00:00.000Z',
    updated_at: '2026-11-28T12:00:00.000Z',
  }
  export const one = Envelope(environment, example)
  export const page = PageEnvelope(environment)
  export const deleted = Envelope(t.Object({ name: t.String() }), { name: 'prod' })
}
