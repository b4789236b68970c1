/** What input cannot become valid objects, refused with a 422 naming the fields before anything is built. */
import { type FieldError, invalid } from '../lib/errors'
import { baseName, hostsOf } from './common'
import type { RenderInput } from './types'

const SERVE_NAME = /^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$/
const ENV_NAME = /^[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?$/
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/
const ENV_VAR_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/
/** A CronJob's name: its Jobs are named `{name}-{11 characters}`, within 63. */
export const CRONJOB_NAME_MAX = 52
/** KubeRay's limit on a RayService's name (it derives its RayCluster's and Services' names from it). */
export const RAYSERVICE_NAME_MAX = 47
/** The deployment's environment variables: how many, and their names and values in all (UTF-8 bytes). */
export const ENV_VARS_MAX = 200
export const ENV_BYTES_MAX = 256 * 1024

export function validate(input: RenderInput): void {
  const errors: FieldError[] = []
  const check = (ok: boolean, path: string, message: string) => ok || errors.push({ path, message })
  check(SERVE_NAME.test(input.serve.name), '/serve/name', 'must be a DNS-1035 label of 1-32 characters')
  check(ENV_NAME.test(input.environment.name), '/environment/name', 'must be a DNS label of 1-20 characters')
  check(DNS_LABEL.test(input.environment.namespace), '/environment/namespace', 'must be a DNS label')
  check(input.infra.cores > 0 && Number.isFinite(input.infra.cores), '/infra/cores', 'must be a positive number')
  check(input.infra.memory > 0 && Number.isFinite(input.infra.memory), '/infra/memory', 'must be a positive number of GiB')
  // Ray workers may rest at 0 (the head serves); an HPA's minReplicas cannot be 0 without an alpha feature gate.
  const minimum = input.serve.type === 'api' && input.infra.backend_type === 'ray' ? 0 : 1
  check(Number.isInteger(input.infra.min_replicas) && input.infra.min_replicas >= minimum, '/infra/min_replicas', `must be a whole number ≥ ${minimum}`)
  check(Number.isInteger(input.infra.max_replicas) && input.infra.max_replicas >= input.infra.min_replicas, '/infra/max_replicas', 'must be a whole number ≥ min_replicas')
  check(input.artifact.image.trim() !== '' && !/\s/.test(input.artifact.image), '/artifact/image', 'must be an image reference without spaces')
  for (const [index, host] of hostsOf(input).entries()) check(HOSTNAME.test(host), `/hosts/${index}`, `"${host}" is not a valid host name`)
  for (const name of Object.keys(input.deployment.environment_variables)) {
    check(ENV_VAR_NAME.test(name), `/deployment/environment_variables/${name}`, 'is not a valid environment variable name')
  }
  if (input.serve.type === 'workflow') check((input.workflow?.schedule ?? '').trim() !== '', '/workflow/schedule', 'is required for a workflow serve')
  // Derived names past their limits: a CronJob's Job name adds 11 characters to its 63; KubeRay names a RayService's children after it.
  const name = baseName(input.serve.name, input.environment.name)
  if (input.serve.type === 'workflow') check(name.length <= CRONJOB_NAME_MAX, '/serve/name', `the CronJob name ${name} has ${name.length} characters; Kubernetes allows ${CRONJOB_NAME_MAX}`)
  else if (input.infra.backend_type === 'ray') check(name.length <= RAYSERVICE_NAME_MAX, '/serve/name', `the RayService name ${name} has ${name.length} characters; KubeRay allows ${RAYSERVICE_NAME_MAX}`)
  const variables = Object.entries(input.deployment.environment_variables)
  for (const [key, value] of variables) check(!value.includes('\u0000') && !key.includes('\u0000'), `/deployment/environment_variables/${key}`, 'must not hold a NUL character')
  const bytes = variables.reduce((sum, [key, value]) => sum + Buffer.byteLength(key) + Buffer.byteLength(value), 0)
  check(variables.length <= ENV_VARS_MAX, '/deployment/environment_variables', `at most ${ENV_VARS_MAX} variables (${variables.length} given)`)
  check(bytes <= ENV_BYTES_MAX, '/deployment/environment_variables', `at most ${ENV_BYTES_MAX / 1024} KiB of names and values in all (${Math.ceil(bytes / 1024)} KiB given): they are repeated in every manifest`)
  const zero = (value: string | number | undefined) => value === 0 || value === '0%'
  if (input.deployment.strategy === 'rolling') {
    check(!(zero(input.deployment.max_surge ?? '25%') && zero(input.deployment.max_unavailable ?? 0)), '/deployment/max_unavailable', 'max_surge and max_unavailable cannot both be 0: the rollout could never replace a pod')
  }
  if (errors.length > 0) throw invalid(errors, 'The serve cannot be rendered')
}
