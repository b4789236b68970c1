/**
 * Where the Kubernetes driver finds credentials, and how it says so when there are none: a deploy
 * must be refused up front naming what to set, not fail at the first request with client-node's
 * "HTTP protocol is not allowed when skipTLSVerify is not set". Whether a cluster is configured is read
 * without client-node (src/cluster/kubeconfig.ts); every case here also checks that client-node's own
 * reading (loadKubeConfig, used for the calls) agrees.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClusterDrivers } from '../../src/cluster'
import { ClusterError, type ClusterTarget } from '../../src/cluster/driver'
import { connectionOf, KUBERNETES_NOT_CONFIGURED_HELP, type KubeconfigLocations } from '../../src/cluster/kubeconfig'
import { loadKubeConfig } from '../../src/cluster/kubernetes'
import { loadConfig } from '../../src/config'

const dir = mkdtempSync(join(tmpdir(), 'kube-credentials-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const emptyHome = join(dir, 'empty-home')
mkdirSync(emptyHome)
const nowhere: KubeconfigLocations = { home: emptyHome, inCluster: false }

function kubeconfigFile(name: string, clusters: { name: string; server: string; insecure?: boolean }[], currentContext = clusters[0]?.name ?? '') {
  const file = join(dir, name)
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: clusters.map((c) => ({ name: c.name, cluster: { server: c.server, ...(c.insecure ? { 'insecure-skip-tls-verify': true } : {}) } })),
    users: [{ name: `user-${name}`, user: { token: 't' } }],
    contexts: clusters.map((c) => ({ name: c.name, context: { cluster: c.name, user: `user-${name}` } })),
    'current-context': currentContext,
  }
  writeFileSync(file, JSON.stringify(config))
  return file
}

const target = (kube_context = ''): ClusterTarget => ({
  serve: 'fraud',
  environment: { name: 'prod', namespace: 'ml', cluster_name: 'c', cluster_driver: 'kubernetes', kube_context },
})
/** The Kubernetes driver as the app makes it, finding its credentials in `where`. */
const driverWith = (where: KubeconfigLocations) => createClusterDrivers(loadConfig({ ENV: 'test', CLUSTER_REQUEST_ATTEMPTS: '1' }), { kubeconfigLocations: where }).for(target())

/** What client-node makes of the same credentials: the context and server, or its not_configured message. */
function clientNodeReading(context: string, where: KubeconfigLocations): { contextName: string; server: string } | string {
  try {
    const kc = loadKubeConfig(context, where)
    const cluster = kc.getCurrentCluster()
    if (!cluster) return 'no cluster'
    if (cluster.server.startsWith('http://') && !cluster.skipTLSVerify) return 'plain http'
    return { contextName: kc.getCurrentContext(), server: cluster.server }
  } catch (error) {
    return error instanceof ClusterError ? error.message : String(error)
  }
}

/** Ours, in the same form. */
function ownReading(context: string, where: KubeconfigLocations): { contextName: string; server: string } | string {
  try {
    return connectionOf(context, where)
  } catch (error) {
    const message = error instanceof ClusterError ? error.message : String(error)
    return message.includes('has no cluster for context') ? 'no cluster' : message.includes('is plain http://') ? 'plain http' : message
  }
}

const agree = (context: string, where: KubeconfigLocations) => expect(ownReading(context, where)).toEqual(clientNodeReading(context, where))
const errorOf = (fn: () => unknown): ClusterError => {
  try {
    fn()
  } catch (error) {
    if (error instanceof ClusterError) return error
    throw error
  }
  throw new Error('expected a ClusterError')
}

describe('no credentials anywhere', () => {
  test('ensureConfigured refuses with what to set (KUBECONFIG, in-cluster, or DCM)', () => {
    const error = errorOf(() => driverWith(nowhere).ensureConfigured(target()))
    expect(error.kind).toBe('not_configured')
    expect(error.message).toBe(`No Kubernetes cluster is configured: ${KUBERNETES_NOT_CONFIGURED_HELP}`)
    for (const hint of ['KUBECONFIG', 'service account', 'cluster_driver to "dcm"', 'DCM_URL']) expect(error.message).toContain(hint)
  })

  test('availability says it is not usable, and why', () => {
    expect(driverWith(nowhere).availability()).toEqual({ usable: false, detail: `No Kubernetes cluster is configured: ${KUBERNETES_NOT_CONFIGURED_HELP}` })
    agree('', nowhere)
  })

  test('a deploy call fails with not_configured before any request', async () => {
    const error = await driverWith(nowhere).status(target()).catch((e) => e)
    expect(error).toBeInstanceOf(ClusterError)
    expect(error.kind).toBe('not_configured')
  })
})

describe('credentials that cannot work', () => {
  test('KUBECONFIG naming a missing file', () => {
    const missing = join(dir, 'missing.yaml')
    const error = errorOf(() => driverWith({ ...nowhere, kubeconfig: missing }).ensureConfigured(target()))
    expect(error.kind).toBe('not_configured')
    expect(error.message).toStartWith(`Cannot load the kubeconfig from KUBECONFIG=${missing}:`)
    expect(clientNodeReading('', { ...nowhere, kubeconfig: missing })).toStartWith(`Cannot load the kubeconfig from KUBECONFIG=${missing}:`)
  })

  test('a file that is not a kubeconfig, or an empty one', () => {
    const garbage = join(dir, 'garbage.yaml')
    writeFileSync(garbage, 'just a string')
    const error = errorOf(() => driverWith({ ...nowhere, kubeconfig: garbage }).ensureConfigured(target()))
    expect(error.message).toStartWith('The kubeconfig has no cluster for context ""')
    agree('', { ...nowhere, kubeconfig: garbage })
    const empty = join(dir, 'empty.yaml')
    writeFileSync(empty, '')
    expect(errorOf(() => driverWith({ ...nowhere, kubeconfig: empty }).ensureConfigured(target())).message).toStartWith(`Cannot load the kubeconfig from KUBECONFIG=${empty}:`)
    expect(clientNodeReading('', { ...nowhere, kubeconfig: empty })).toStartWith(`Cannot load the kubeconfig from KUBECONFIG=${empty}:`)
  })

  test('a plain http:// API server without insecure-skip-tls-verify', () => {
    const file = kubeconfigFile('http.yaml', [{ name: 'kind', server: 'http://127.0.0.1:6443' }])
    const error = errorOf(() => driverWith({ ...nowhere, kubeconfig: file }).ensureConfigured(target()))
    expect(error.kind).toBe('not_configured')
    expect(error.message).toContain('is plain http:// (http://127.0.0.1:6443)')
    expect(error.message).toContain('insecure-skip-tls-verify: true')
    agree('', { ...nowhere, kubeconfig: file })
  })

  test("an environment's kube_context the kubeconfig does not have", () => {
    const file = kubeconfigFile('one.yaml', [{ name: 'staging', server: 'https://staging:6443' }])
    const error = errorOf(() => driverWith({ ...nowhere, kubeconfig: file }).ensureConfigured(target('prod-eks')))
    expect(error.kind).toBe('not_configured')
    expect(error.message).toBe(`The kubeconfig (KUBECONFIG=${file}) has no context named "prod-eks" (the environment's kube_context)`)
    agree('prod-eks', { ...nowhere, kubeconfig: file })
  })
})

describe('credentials found', () => {
  test('KUBECONFIG with several files: contexts of all of them, the first current', () => {
    const a = kubeconfigFile('a.yaml', [{ name: 'staging', server: 'https://staging:6443' }])
    const b = kubeconfigFile('b.yaml', [{ name: 'prod-eks', server: 'https://prod:6443' }])
    const where = { ...nowhere, kubeconfig: `${a}:${b}` }
    expect(loadKubeConfig('', where).getCurrentCluster()?.server).toBe('https://staging:6443')
    expect(loadKubeConfig('prod-eks', where).getCurrentCluster()?.server).toBe('https://prod:6443')
    expect(() => driverWith(where).ensureConfigured(target('prod-eks'))).not.toThrow()
    expect(driverWith(where).availability()).toEqual({ usable: true, detail: 'kubeconfig context "staging", API server https://staging:6443' })
    for (const context of ['', 'staging', 'prod-eks', 'absent']) agree(context, where)
    // A name in two files: client-node refuses to merge them ("Duplicate cluster: staging").
    const shadow = kubeconfigFile('shadow.yaml', [{ name: 'staging', server: 'https://other:6443' }])
    expect(ownReading('', { ...nowhere, kubeconfig: `${a}:${shadow}` })).toEndWith('Duplicate cluster: staging')
    for (const context of ['', 'staging']) agree(context, { ...nowhere, kubeconfig: `${a}:${shadow}` })
  })

  test('~/.kube/config when KUBECONFIG is not set', () => {
    const home = join(dir, 'home')
    mkdirSync(join(home, '.kube'), { recursive: true })
    copyFileSync(kubeconfigFile('home.yaml', [{ name: 'kind-local', server: 'http://127.0.0.1:8001', insecure: true }]), join(home, '.kube', 'config'))
    expect(loadKubeConfig('', { home, inCluster: false }).getCurrentContext()).toBe('kind-local')
    expect(() => driverWith({ home, inCluster: false }).ensureConfigured(target())).not.toThrow()
    agree('', { home, inCluster: false })
  })

  test('in the cluster: the service account, at https://KUBERNETES_SERVICE_HOST:PORT', () => {
    const where = { home: emptyHome, inCluster: true, serviceHost: '10.0.0.1', servicePort: '443' }
    expect(driverWith(where).availability()).toEqual({ usable: true, detail: 'kubeconfig context "inClusterContext", API server https://10.0.0.1:443' })
    expect(connectionOf('', { ...where, serviceHost: 'fd00::1' }).server).toBe('https://[fd00::1]:443')
  })
})
