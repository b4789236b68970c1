/**
 * Where the Kubernetes driver's credentials are and whether they can work, read without
 * @kubernetes/client-node: the start-up log, /readyz and the "is a cluster configured?" check before a
 * change is recorded need only this, and client-node costs some 45 MiB of memory and a good part of
 * the start-up, so it is loaded on the first cluster call (./index.ts). The rules are client-node's own
 * (loadFromDefault, loadFromCluster, mergeConfig), kept in step with it by test/unit/kube-credentials.
 */
import { existsSync, readFileSync } from 'node:fs'
import { isIPv6 } from 'node:net'
import { homedir } from 'node:os'
import { delimiter, join } from 'node:path'
import { parse } from 'yaml'
import { ClusterError, type DriverAvailability } from './driver'

/** What to set when no cluster can be reached: the message of every `not_configured` error. */
export const KUBERNETES_NOT_CONFIGURED_HELP =
  'set KUBECONFIG (or provide ~/.kube/config) to a kubeconfig that reaches the cluster, run the service inside the cluster with a service account, or set the environment\'s cluster_driver to "dcm" and DCM_URL to the Darwin Cluster Manager'

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token'
/** client-node's name for the in-cluster context. */
export const IN_CLUSTER_CONTEXT = 'inClusterContext'

/** Where credentials may be found: the process's environment and home, unless a test says otherwise. */
export interface KubeconfigLocations {
  /** KUBECONFIG: one or more files, joined by the path delimiter. */
  kubeconfig?: string
  home: string
  /** KUBERNETES_SERVICE_HOST with the service account token mounted. */
  inCluster: boolean
  /** KUBERNETES_SERVICE_HOST and _PORT, in the cluster. */
  serviceHost?: string
  servicePort?: string
}

export const processLocations = (): KubeconfigLocations => ({
  kubeconfig: process.env.KUBECONFIG,
  home: homedir(),
  inCluster: Boolean(process.env.KUBERNETES_SERVICE_HOST) && existsSync(SERVICE_ACCOUNT_TOKEN),
  serviceHost: process.env.KUBERNETES_SERVICE_HOST,
  servicePort: process.env.KUBERNETES_SERVICE_PORT,
})

export type CredentialsSource = { kind: 'files'; files: string[]; label: string } | { kind: 'in-cluster'; label: string }

/** Where client-node's loadFromDefault() would look, in its order; undefined: nowhere. */
export function credentialsSource(where: KubeconfigLocations): CredentialsSource | undefined {
  const files = (where.kubeconfig ?? '').split(delimiter).filter((file) => file.trim() !== '')
  if (files.length > 0) return { kind: 'files', files, label: `KUBECONFIG=${where.kubeconfig}` }
  const file = join(where.home, '.kube', 'config')
  if (existsSync(file)) return { kind: 'files', files: [file], label: file }
  if (where.inCluster) return { kind: 'in-cluster', label: 'the in-cluster service account' }
  return undefined
}

export const notConfigured = () => new ClusterError('not_configured', `No Kubernetes cluster is configured: ${KUBERNETES_NOT_CONFIGURED_HELP}`)
export const noSuchContext = (label: string, context: string) =>
  new ClusterError('not_configured', `The kubeconfig (${label}) has no context named "${context}" (the environment's kube_context)`)
export const noCluster = (context: string) => new ClusterError('not_configured', `The kubeconfig has no cluster for context "${context}": ${KUBERNETES_NOT_CONFIGURED_HELP}`)
export const plainHttp = (cluster: string, server: string) =>
  new ClusterError('not_configured', `The kubeconfig's cluster "${cluster}" is plain http:// (${server}); client-node calls it only with insecure-skip-tls-verify: true, else use https://`)
export const unloadable = (label: string, error: unknown) =>
  new ClusterError('not_configured', `Cannot load the kubeconfig from ${label}: ${error instanceof Error ? error.message : String(error)}`)

interface Named<T> {
  name: string
  value: T
}

/** A kubeconfig's named entries (`clusters`, `contexts`) as client-node reads them. */
function entries<T>(config: Record<string, unknown>, key: string, inner: string): Named<T>[] {
  const list = config[key]
  if (!Array.isArray(list)) return []
  return list.flatMap((item) =>
    typeof item === 'object' && item !== null && typeof (item as Record<string, unknown>).name === 'string'
      ? [{ name: (item as { name: string }).name, value: ((item as Record<string, unknown>)[inner] ?? {}) as T }]
      : [],
  )
}

/** The context `context` (or the current one) of the credentials, and its API server; throws `not_configured`. */
export function connectionOf(context: string, where: KubeconfigLocations): { contextName: string; server: string } {
  const source = credentialsSource(where)
  if (source === undefined) throw notConfigured()
  if (source.kind === 'in-cluster') {
    if (context !== '' && context !== IN_CLUSTER_CONTEXT) throw noSuchContext(source.label, context)
    const host = where.serviceHost ?? ''
    const port = where.servicePort ?? ''
    // client-node's loadFromCluster: http on these ports (then refused, as for any http:// server), else https.
    const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https'
    const server = `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`
    if (scheme === 'http') throw plainHttp('inCluster', server)
    return { contextName: IN_CLUSTER_CONTEXT, server }
  }
  const clusters: Named<{ server?: unknown; 'insecure-skip-tls-verify'?: unknown }>[] = []
  const contexts: Named<{ cluster?: unknown }>[] = []
  const users: Named<unknown>[] = []
  let current: string | undefined
  try {
    for (const [index, file] of source.files.entries()) {
      const config = parse(readFileSync(file, 'utf8')) as unknown
      if (config === null || config === undefined) throw new Error(`${file} is empty`)
      // A scalar holds no entries (client-node reads it as an empty kubeconfig).
      const fields = typeof config === 'object' ? (config as Record<string, unknown>) : {}
      // The first file's current-context; a later file may not repeat a name (client-node's mergeConfig).
      current ??= typeof fields['current-context'] === 'string' ? fields['current-context'] : ''
      const merge = <T>(into: Named<T>[], found: Named<T>[], what: string) => {
        for (const entry of found) {
          if (index > 0 && into.some((known) => known.name === entry.name)) throw new Error(`Duplicate ${what}: ${entry.name}`)
          into.push(entry)
        }
      }
      merge(clusters, entries(fields, 'clusters', 'cluster'), 'cluster')
      merge(users, entries(fields, 'users', 'user'), 'user')
      merge(contexts, entries(fields, 'contexts', 'context'), 'context')
    }
  } catch (error) {
    throw unloadable(source.label, error)
  }
  const name = context !== '' ? context : (current ?? '')
  // Within one file, the last of a repeated name (client-node keeps them all and looks up the last).
  const found = contexts.findLast((each) => each.name === name)
  if (context !== '' && !found) throw noSuchContext(source.label, context)
  const cluster = clusters.findLast((each) => each.name === found?.value.cluster)
  const server = cluster?.value.server
  if (!cluster || typeof server !== 'string') throw noCluster(name)
  if (server.startsWith('http://') && cluster.value['insecure-skip-tls-verify'] !== true) throw plainHttp(cluster.name, server)
  return { contextName: name, server }
}

/** Whether the default credentials can be used, and how (for /readyz and the start-up log). */
export function kubernetesAvailability(where: KubeconfigLocations): DriverAvailability {
  try {
    const { contextName, server } = connectionOf('', where)
    return { usable: true, detail: `kubeconfig context "${contextName}", API server ${server}` }
  } catch (error) {
    return { usable: false, detail: error instanceof Error ? error.message : String(error) }
  }
}
