/**
 * A program written as a pipeline's author would, against a client generated from /docs/json
 * (`openapi-typescript` types + `openapi-fetch`), without one cast: create an environment, a serve,
 * its infra config and an artifact, deploy, read the placement and the history, preview the
 * manifests, undeploy. test/contract/openapi.test.ts generates `./api.d.ts` beside a copy of this
 * file, typechecks it (strict), and runs it against the app. Not in the root typecheck: `./api` exists
 * only there.
 */
import createClient from 'openapi-fetch'
import type { paths } from './api'

export interface WorkflowOutcome {
  revision: number
  status: 'pending' | 'deploying' | 'active' | 'failed' | 'superseded' | 'undeployed' | 'cancelled'
  location: string | null
  historyTotal: number
  maxReplicas: number | undefined
  manifestKinds: string[]
  undeployed: string
}

export async function runWorkflow(baseUrl: string, token: string, fetchImpl: (request: Request) => Promise<Response>, onDeployed: () => Promise<void>): Promise<WorkflowOutcome> {
  const client = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${token}` }, fetch: fetchImpl })
  const fail = (what: string, error: { code: string; message: string } | undefined): never => {
    throw new Error(`${what}: ${error?.code ?? 'no answer'} ${error?.message ?? ''}`)
  }

  const environment = await client.POST('/api/v1/environment', {
    body: {
      name: 'client-env',
      environment_configs: { domain_suffix: '.example.com', cluster_name: 'c', namespace: 'ml-serve', security_group: '', ft_redis_url: '', workflow_url: '' },
    },
  })
  if (!environment.data) return fail('create environment', environment.error)
  const environmentId: number = environment.data.data.id

  const serve = await client.POST('/api/v1/serve', { body: { name: 'client-serve', type: 'api', description: 'from a generated client', space: 'ml' } })
  if (!serve.data) return fail('create serve', serve.error)

  const infra = await client.POST('/api/v1/serve/{serve_name}/infra-config/{env}', {
    params: { path: { serve_name: 'client-serve', env: 'client-env' } },
    body: { api_serve_infra_config: { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 3, node_capacity_type: 'spot' } },
  })
  if (!infra.data) return fail('create infra config', infra.error)
  const maxReplicas: number | undefined = infra.data.data.api_serve_infra_config?.max_replicas

  const artifact = await client.POST('/api/v1/artifact', { body: { serve_name: 'client-serve', version: 'v1', image: 'registry.example.com/client-serve:v1' } })
  if (!artifact.data) return fail('register artifact', artifact.error)

  const deployed = await client.POST('/api/v1/serve/{serve_name}/deploy', {
    params: { path: { serve_name: 'client-serve' }, header: { 'Idempotency-Key': `client-${environmentId}` } },
    body: { env: 'client-env', artifact_version: 'v1', api_serve_deployment_config: { deployment_strategy: 'rolling', environment_variables: {} } },
  })
  if (!deployed.data) return fail('deploy', deployed.error)
  if (!('revision' in deployed.data.data)) return fail('deploy', undefined)
  const revision: number = deployed.data.data.revision
  const location = deployed.response.headers.get('location')
  await onDeployed()

  const placement = await client.GET('/api/v1/serve/{serve_name}/deployment/{env}', { params: { path: { serve_name: 'client-serve', env: 'client-env' } } })
  if (!placement.data) return fail('read placement', placement.error)

  const history = await client.GET('/api/v1/serve/{serve_name}/deployments', { params: { path: { serve_name: 'client-serve' }, query: { env: 'client-env', limit: 10 } } })
  if (!history.data) return fail('read history', history.error)
  const historyTotal: number = history.data.pagination.total
  const first = history.data.data[0]
  if (!first) return fail('read history', undefined)

  const preview = await client.GET('/api/v1/serve/{serve_name}/manifests/{env}', { params: { path: { serve_name: 'client-serve', env: 'client-env' }, query: { artifact_version: 'v1' } } })
  if (!preview.data) return fail('preview manifests', preview.error)
  // The route also answers YAML (Accept: application/yaml); without that header it is the JSON envelope.
  if (typeof preview.data === 'string') return fail('preview manifests', undefined)
  const manifestKinds = preview.data.data.map((object) => String(object.kind))

  const undeployed = await client.POST('/api/v1/serve/{serve_name}/undeploy', { params: { path: { serve_name: 'client-serve' } }, body: { env: 'client-env' } })
  if (!undeployed.data) return fail('undeploy', undeployed.error)

  return { revision, status: first.status, location, historyTotal, maxReplicas, manifestKinds, undeployed: undeployed.data.message }
}
