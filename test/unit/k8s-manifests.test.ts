/**
 * The control plane's own Kubernetes manifests (k8s/), checked rather than eyeballed: every
 * document parses, built-in kinds survive a round trip through client-node's ObjectSerializer
 * (a misspelled or misplaced field is dropped by it, so the round trip differs), and the properties
 * the deployment relies on hold — probes, non-root, read-only root, secrets by reference, a
 * ConfigMap made of env.example's variables, least RBAC covering what the cluster driver manages,
 * and migrations in a Job rather than in every replica.
 */
import { describe, expect, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js'
import { parseAllDocuments } from 'yaml'

const root = join(import.meta.dir, '../..')
const dir = join(root, 'k8s')
const NAMESPACE = 'darwin-ml-serve'

interface Manifest {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string> }
  [key: string]: unknown
}

const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'))
const resourceFiles = files.filter((f) => f !== 'kustomization.yaml')
const docs: Manifest[] = resourceFiles.flatMap((file) =>
  parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((doc) => {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`)
    return doc.toJS() as Manifest
  }),
)
const one = <T>(kind: string, name?: string) => {
  const found = docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name))
  expect(found).toHaveLength(1)
  return found[0] as unknown as T
}

// Only the fields these tests read; the round trip below checks the rest against the real schema.
interface Probe { httpGet?: { path: string; port: string | number } }
interface EnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } }
interface Container {
  name: string
  image: string
  args?: string[]
  ports?: { name?: string; containerPort: number }[]
  env?: EnvVar[]
  envFrom?: { configMapRef?: { name: string } }[]
  livenessProbe?: Probe
  readinessProbe?: Probe
  startupProbe?: Probe
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> }
  securityContext?: { readOnlyRootFilesystem?: boolean; runAsNonRoot?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[] } }
}
interface PodSpec {
  serviceAccountName?: string
  restartPolicy?: string
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number }
  containers: Container[]
}
interface Deployment { spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } }
interface Job { spec: { template: { spec: PodSpec } } }
interface Service { spec: { selector: Record<string, string>; ports: { targetPort: string | number }[] } }
interface ConfigMap { data: Record<string, string> }
interface ClusterRole { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }
interface ClusterRoleBinding { roleRef: { name: string }; subjects: { kind: string; name: string; namespace: string }[] }

const envExampleKeys = new Set(
  readFileSync(join(root, 'env.example'), 'utf8')
    .split('\n')
    .map((line) => /^([A-Z][A-Z0-9_]*)=/.exec(line)?.[1])
    .filter((key): key is string => key !== undefined),
)

const BUILT_IN: Record<string, string> = {
  Namespace: 'V1Namespace',
  ServiceAccount: 'V1ServiceAccount',
  ClusterRole: 'V1ClusterRole',
  ClusterRoleBinding: 'V1ClusterRoleBinding',
  ConfigMap: 'V1ConfigMap',
  Deployment: 'V1Deployment',
  Service: 'V1Service',
  Job: 'V1Job',
}
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding'])

describe('k8s manifests', () => {
  test('every document parses and has apiVersion, kind, a name and (when namespaced) the namespace', () => {
    expect(docs.length).toBeGreaterThanOrEqual(8)
    for (const doc of docs) {
      expect(typeof doc.apiVersion).toBe('string')
      expect(Object.keys(BUILT_IN)).toContain(doc.kind)
      expect(doc.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
      if (!CLUSTER_SCOPED.has(doc.kind)) expect(doc.metadata.namespace).toBe(NAMESPACE)
    }
  })

  test('built-in kinds round-trip through the Kubernetes schema unchanged (no unknown or misplaced field)', () => {
    for (const doc of docs) {
      const type = BUILT_IN[doc.kind]!
      const roundTripped = ObjectSerializer.serialize(ObjectSerializer.deserialize(doc, type), type)
      expect({ kind: doc.kind, manifest: JSON.parse(JSON.stringify(roundTripped)) }).toEqual({ kind: doc.kind, manifest: doc })
    }
  })

  test('kustomization lists every manifest', () => {
    const kustomization = parseAllDocuments(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0]!.toJS() as { resources: string[]; namespace: string }
    expect([...kustomization.resources].sort()).toEqual([...resourceFiles].sort())
    expect(kustomization.namespace).toBe(NAMESPACE)
  })

  const deployment = one<Deployment>('Deployment', 'darwin-ml-serve')
  const pod = deployment.spec.template.spec
  const api = pod.containers[0]!

  test('Deployment: 2+ replicas, probes on /healthcheck and /readyz, resources, and selector ⊆ pod labels', () => {
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2)
    expect(api.livenessProbe?.httpGet?.path).toBe('/healthcheck')
    expect(api.startupProbe?.httpGet?.path).toBe('/healthcheck')
    expect(api.readinessProbe?.httpGet?.path).toBe('/readyz')
    const portNames = (api.ports ?? []).map((p) => p.name)
    for (const probe of [api.livenessProbe, api.readinessProbe, api.startupProbe]) expect(portNames).toContain(String(probe?.httpGet?.port))
    expect(api.ports?.[0]?.containerPort).toBe(8007)
    expect(api.resources?.requests?.cpu).toBeDefined()
    expect(api.resources?.requests?.memory).toBeDefined()
    expect(api.resources?.limits?.memory).toBeDefined()
    expect(deployment.spec.template.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels)
  })

  test('pods of the Deployment and the Job run non-root, read-only, without privilege escalation or capabilities', () => {
    const job = one<Job>('Job')
    for (const spec of [pod, job.spec.template.spec]) {
      expect(spec.securityContext?.runAsNonRoot).toBe(true)
      expect(spec.securityContext?.runAsUser).toBeGreaterThan(0)
      for (const container of spec.containers) {
        expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, runAsNonRoot: true, allowPrivilegeEscalation: false })
        expect(container.securityContext?.capabilities?.drop).toEqual(['ALL'])
      }
    }
  })

  test('migrations run once in a Job with the same image; the Deployment does not migrate on start', () => {
    const job = one<Job>('Job')
    const migrate = job.spec.template.spec.containers[0]!
    expect(migrate.args).toEqual(['migrate'])
    expect(migrate.image).toBe(api.image)
    expect(job.spec.template.spec.restartPolicy).not.toBe('Always')
    expect(api.env?.find((e) => e.name === 'MIGRATE_ON_START')?.value).toBe('false')
  })

  test('ConfigMap: only env.example variables, none of them a credential; used by both workloads', () => {
    const configMap = one<ConfigMap>('ConfigMap')
    const keys = Object.keys(configMap.data)
    expect(keys.filter((k) => !envExampleKeys.has(k))).toEqual([])
    expect(keys.filter((k) => /PASSWORD|TOKEN|SECRET/.test(k))).toEqual([])
    expect(configMap.data.MIGRATE_ON_START).toBe('false')
    const job = one<Job>('Job')
    for (const container of [api, job.spec.template.spec.containers[0]!]) {
      expect(container.envFrom?.map((e) => e.configMapRef?.name)).toContain((configMap as unknown as Manifest).metadata.name)
    }
  })

  test('credentials come from Secret references, never literals', () => {
    const fromSecret = (api.env ?? []).filter((e) => e.valueFrom?.secretKeyRef).map((e) => e.name)
    for (const name of ['MYSQL_PASSWORD', 'GITHUB_TOKEN', 'MLFLOW_TRACKING_PASSWORD', 'ML_SERVE_BOOTSTRAP_ADMIN_TOKEN']) expect(fromSecret).toContain(name)
    for (const name of fromSecret) expect(envExampleKeys.has(name)).toBe(true)
    const literals = (api.env ?? []).filter((e) => e.value !== undefined && /PASSWORD|TOKEN|SECRET/.test(e.name))
    expect(literals).toEqual([])
  })

  test('Service selects the pods and targets the named container port', () => {
    const service = one<Service>('Service')
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector)
    expect((api.ports ?? []).map((p) => p.name)).toContain(String(service.spec.ports[0]!.targetPort))
  })

  test('RBAC: the pods run as the ServiceAccount bound to a role covering exactly the kinds the driver manages', () => {
    const account = one<Manifest>('ServiceAccount')
    expect(pod.serviceAccountName).toBe(account.metadata.name)
    const role = one<ClusterRole>('ClusterRole')
    const binding = one<ClusterRoleBinding>('ClusterRoleBinding')
    expect(binding.roleRef.name).toBe((role as unknown as Manifest).metadata.name)
    expect(binding.subjects).toContainEqual({ kind: 'ServiceAccount', name: account.metadata.name, namespace: NAMESPACE })

    const verbs = ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete']
    const needed = [
      ['apps', 'deployments'],
      ['', 'services'],
      ['', 'secrets'],
      ['autoscaling', 'horizontalpodautoscalers'],
      ['networking.k8s.io', 'ingresses'],
      ['networking.istio.io', 'virtualservices'],
      ['ray.io', 'rayservices'],
    ]
    for (const [group, resource] of needed) {
      const granted = new Set(role.rules.filter((r) => r.apiGroups.includes(group!) && r.resources.includes(resource!)).flatMap((r) => r.verbs))
      expect({ resource, verbs: verbs.filter((v) => granted.has(v)) }).toEqual({ resource, verbs })
    }
    // Least privilege: no wildcard, nothing beyond those kinds.
    for (const rule of role.rules) {
      expect([...rule.apiGroups, ...rule.resources, ...rule.verbs]).not.toContain('*')
      for (const resource of rule.resources) expect(needed.map(([, r]) => r)).toContain(resource)
    }
  })
})
