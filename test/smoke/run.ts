/**
 * Smoke test of the built artefact (`npm run build` → dist/darwin-ml-serve), as CI runs it: the
 * product's main job, through the binary alone. A throwaway database server, the fake Kubernetes API
 * and the fake DCM are started here; the binary runs from an empty working directory with only
 * environment variables (a kubeconfig file for the fake cluster — https, its own CA, a client
 * certificate — and DCM_URL), so templates, migrations and docs must come from inside it. It creates an environment, serve, infra config and artifacts,
 * previews manifests, deploys with `?wait=`, finds the objects in the fake cluster, rolls back,
 * redeploys on an infra PATCH, deploys with the CLI (`darwin-ml-serve deploy … --wait`), undeploys,
 * deploys and undeploys an MLflow model in one click, and
 * deploys to an environment on DCM. Prints one `ok`/`not ok` line per check and
 * `smoke: N passed, N failed`; exits 1 when any check failed.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { waitFor200 } from '../../bench/support'
import { mysqlDriver } from '../../src/config'
import { freePort, startLocalServer } from '../../src/db/local-server'
import { LABELS } from '../../src/render'
import { FakeDcm } from '../support/fake-dcm'
import { FakeKubernetes, type StoredObject } from '../support/fake-kubernetes'

const binary = resolve(process.argv[2] ?? join(import.meta.dir, '../../dist/darwin-ml-serve'))
const token = `smoke-admin-token-${crypto.randomUUID()}`
let passed = 0
let failed = 0

function check(name: string, ok: boolean, detail = '') {
  if (ok) passed++
  else failed++
  console.log(`${ok ? 'ok' : 'not ok'} - ${name}${ok || !detail ? '' : ` (${detail})`}`)
}

const scratch = mkdtempSync(join(tmpdir(), 'darwin-ml-serve-smoke-'))
// The server of startLocalServer is reached over TCP like any MySQL; the binary knows it only by URL.
const server = await startLocalServer({ dataDir: join(scratch, 'mysql'), preferContainer: false })
// https with a private CA and a client certificate in the kubeconfig, as a real cluster's.
const kube = new FakeKubernetes({ tls: true })
const dcm = new FakeDcm()
const kubeconfig = join(scratch, 'kubeconfig.json')
writeFileSync(kubeconfig, kube.kubeConfig().exportConfig())
// What a Deployment controller does: once the spec is new, report every replica updated and ready.
const controller = setInterval(() => {
  for (const deployment of kube.list('Deployment')) {
    const status = (deployment.status ?? {}) as { observedGeneration?: number }
    if (status.observedGeneration === deployment.metadata.generation) continue
    const replicas = 1
    kube.setStatus('Deployment', deployment.metadata.namespace, deployment.metadata.name, {
      observedGeneration: deployment.metadata.generation,
      replicas,
      updatedReplicas: replicas,
      readyReplicas: replicas,
      availableReplicas: replicas,
    })
  }
}, 25)

const port = await freePort()
// A working directory without the repository, so nothing is found by accident.
const workDir = mkdtempSync(join(tmpdir(), 'darwin-ml-serve-smoke-cwd-'))
const env = {
  PATH: process.env.PATH ?? '',
  HOME: workDir,
  ENV: 'smoke',
  PORT: String(port),
  DATABASE_URL: `${server.url}darwin_ml_serve_smoke`,
  ML_SERVE_BOOTSTRAP_ADMIN_TOKEN: token,
  ENABLE_OTEL: 'false',
  LOG_LEVEL: 'warn',
  KUBECONFIG: kubeconfig,
  DCM_URL: dcm.url,
  ROLLOUT_POLL_INTERVAL_MS: '100',
  DEFAULT_RUNTIME: 'registry.example.com/mlflow-runtime:1.0',
  // The driver under test: `DB_DRIVER=mysql2 bun test/smoke/run.ts` smoke-tests the other one.
  DB_DRIVER: mysqlDriver(),
}
// As in Kubernetes: the migrate subcommand (the Job) first, then the server without migrating.
const migrated = Bun.spawnSync([binary, 'migrate'], { cwd: workDir, env, stdout: 'inherit', stderr: 'inherit' })
check('`darwin-ml-serve migrate` exits 0 (migrations from inside the binary)', migrated.exitCode === 0, `got ${migrated.exitCode}`)
const child = Bun.spawn([binary], { cwd: workDir, env: { ...env, MIGRATE_ON_START: 'false' }, stdout: 'inherit', stderr: 'inherit' })
const base = `http://127.0.0.1:${port}`

interface Answer {
  status: number
  body: any // the API's JSON, read field by field in the checks
  text: string
  headers: Headers
}

async function api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await response.text()
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    parsed = undefined
  }
  return { status: response.status, body: parsed, text, headers: response.headers }
}

const got = (answer: Answer) => `got ${answer.status}: ${answer.text.slice(0, 300)}`
const ownedBy = (serve: string, environment: string) => (object: StoredObject) =>
  object.metadata.labels?.[LABELS.serve] === serve && object.metadata.labels?.[LABELS.environment] === environment
const imageOf = (object: StoredObject | undefined) =>
  (object?.spec as { template?: { spec?: { containers?: { image?: string }[] } } } | undefined)?.template?.spec?.containers?.[0]?.image
const cpuOf = (object: StoredObject | undefined) =>
  (object?.spec as { template?: { spec?: { containers?: { resources?: { requests?: { cpu?: string } } }[] } } } | undefined)?.template?.spec?.containers?.[0]?.resources?.requests?.cpu

async function settled(serve: string, environment: string, revision: number, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const current = await api('GET', `/api/v1/serve/${serve}/deployment/${environment}`)
    if (current.body?.data?.active?.revision === revision && !current.body.data.in_flight) return current.body.data.active
    await Bun.sleep(100)
  }
  return undefined
}

const NS = 'ml-smoke'
const infra = { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 3, node_capacity_type: 'spot' }
const deployment = (version: string, environment = 'smoke') => ({
  env: environment,
  artifact_version: version,
  api_serve_deployment_config: { deployment_strategy: 'rolling', environment_variables: { MODEL_NAME: 'fraud' } },
})

try {
  check('starts and answers /healthcheck', await waitFor200(`${base}/healthcheck`, 20_000))
  const ready = await api('GET', '/readyz')
  check('/readyz is 200 and finds the kubeconfig', ready.status === 200 && ready.body?.data?.cluster_drivers?.kubernetes?.usable === true, got(ready))
  const spec = await api('GET', '/docs/json')
  check('/docs/json is an OpenAPI 3 spec', typeof spec.body?.openapi === 'string' && spec.body.openapi.startsWith('3.') && '/api/v1/environment' in (spec.body.paths ?? {}))
  for (const page of ['/docs', '/redoc']) {
    const html = await api('GET', page)
    const assets = [...html.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] ?? '')
    const answers = await Promise.all(assets.map((asset) => fetch(new URL(asset, `${base}${page}`)).then((r) => r.status)))
    check(
      `${page} is served from the binary alone: no external host, its ${assets.length} assets answer 200`,
      html.status === 200 && !/https?:\/\//.test(html.text) && assets.length > 0 && answers.every((status) => status === 200),
      `${got(html)}; assets ${assets.map((a, i) => `${a} ${answers[i]}`).join(', ')}`,
    )
  }

  // --- set up: environments (Kubernetes and DCM), serve, infra configs, artifacts ---
  const configs = { domain_suffix: '.smoke.example.com', cluster_name: 'smoke', namespace: NS, security_group: '', subnets: '', ft_redis_url: '', workflow_url: '' }
  const created = await api('POST', '/api/v1/environment', { name: 'smoke', environment_configs: configs })
  check('POST /api/v1/environment → 201', created.status === 201, got(created))
  const read = await api('GET', '/api/v1/environment/smoke')
  check('GET /api/v1/environment/smoke → 200 with it', read.status === 200 && read.body?.data?.name === 'smoke', got(read))
  const dcmEnv = await api('POST', '/api/v1/environment', { name: 'smoke-dcm', environment_configs: { ...configs, cluster_driver: 'dcm' } })
  check('POST an environment on DCM → 201', dcmEnv.status === 201, got(dcmEnv))
  const serve = await api('POST', '/api/v1/serve', { name: 'fraud', type: 'api', description: 'Smoke-test model', space: 'smoke' })
  check('POST /api/v1/serve → 201', serve.status === 201, got(serve))
  const infraCreated = await Promise.all(['smoke', 'smoke-dcm'].map((e) => api('POST', `/api/v1/serve/fraud/infra-config/${e}`, { api_serve_infra_config: infra })))
  check('POST infra configs → 201', infraCreated.every((a) => a.status === 201), infraCreated.map(got).join('; '))
  const artifacts = await Promise.all(['v1', 'v2'].map((v) => api('POST', '/api/v1/artifact', { serve_name: 'fraud', version: v, image: `registry.example.com/fraud:${v}` })))
  check('POST /api/v1/artifact (prebuilt images v1, v2) → 201', artifacts.every((a) => a.status === 201), artifacts.map(got).join('; '))

  // --- preview: rendered from the templates inside the binary ---
  const previewJson = await api('GET', '/api/v1/serve/fraud/manifests/smoke?artifact_version=v1')
  const kinds = Array.isArray(previewJson.body?.data) ? previewJson.body.data.map((o: { kind?: string }) => o.kind) : []
  check('manifest preview (JSON) renders Deployment, Service, HPA and Ingress', previewJson.status === 200 && ['Deployment', 'Service', 'HorizontalPodAutoscaler', 'Ingress'].every((k) => kinds.includes(k)), got(previewJson))
  const previewYaml = await api('GET', '/api/v1/serve/fraud/manifests/smoke?artifact_version=v1', undefined, { accept: 'application/yaml' })
  check(
    'manifest preview (YAML) with the image',
    previewYaml.status === 200 && (previewYaml.headers.get('content-type') ?? '').includes('yaml') && previewYaml.text.includes('kind: Deployment') && previewYaml.text.includes('image: registry.example.com/fraud:v1'),
    got(previewYaml),
  )

  // --- deploy, redeploy, roll back: the fake cluster holds what is active ---
  const first = await api('POST', '/api/v1/serve/fraud/deploy?wait=30', deployment('v1'))
  check('deploy v1 with ?wait= → 200, active', first.status === 200 && first.body?.data?.status === 'active', got(first))
  const owned = kube.list().filter(ownedBy('fraud', 'smoke')).map((o) => o.kind).sort()
  check('the fake cluster holds the Deployment, HPA, Ingress and Service', JSON.stringify(owned) === JSON.stringify(['Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'Service']), `got ${owned.join(', ')}`)
  check('the Deployment runs the v1 image', imageOf(kube.get('Deployment', NS, 'fraud-smoke')) === 'registry.example.com/fraud:v1', `got ${imageOf(kube.get('Deployment', NS, 'fraud-smoke'))}`)
  const second = await api('POST', '/api/v1/serve/fraud/deploy?wait=30', deployment('v2'))
  check('deploy v2 with ?wait= → 200, active; the cluster runs v2', second.status === 200 && imageOf(kube.get('Deployment', NS, 'fraud-smoke')) === 'registry.example.com/fraud:v2', got(second))
  const rollback = await api('POST', '/api/v1/serve/fraud/rollback?wait=30', { env: 'smoke' })
  check(
    'rollback with ?wait= → 200, active, from the v1 revision; the cluster runs v1 again',
    rollback.status === 200 && rollback.body?.data?.rolled_back_from === first.body?.data?.revision && imageOf(kube.get('Deployment', NS, 'fraud-smoke')) === 'registry.example.com/fraud:v1',
    got(rollback),
  )

  // --- an infra PATCH redeploys with the new resources ---
  const patched = await api('PATCH', '/api/v1/serve/fraud/infra-config/smoke', { api_serve_infra_config: { cores: 2 } })
  const redeployed = patched.status === 200 ? await settled('fraud', 'smoke', (rollback.body?.data?.revision ?? 0) + 1) : undefined
  check(
    'PATCH infra-config → 200 and a new revision (infra-update) with 2 cores in the cluster',
    redeployed?.reason === 'infra-update' && cpuOf(kube.get('Deployment', NS, 'fraud-smoke')) === '2',
    `${got(patched)}; active ${JSON.stringify(redeployed)}; cpu ${cpuOf(kube.get('Deployment', NS, 'fraud-smoke'))}`,
  )

  // --- the binary as a CI pipeline's client: deploy --wait, progress on stderr, exit 0 once active ---
  const cliRun = Bun.spawn([binary, 'deploy', 'fraud', '--env', 'smoke', '--artifact', 'v2', '--wait=60', '--output', 'json'], {
    cwd: workDir,
    env: { PATH: env.PATH, HOME: workDir, DARWIN_ML_SERVE_URL: base, DARWIN_ML_SERVE_TOKEN: token },
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const [cliOut, cliErr, cliExit] = await Promise.all([new Response(cliRun.stdout).text(), new Response(cliRun.stderr).text(), cliRun.exited])
  const cliRevision = (() => {
    try {
      return JSON.parse(cliOut) as { revision?: number; status?: string }
    } catch {
      return {}
    }
  })()
  check(
    'darwin-ml-serve deploy … --wait (the CLI) → exit 0, the revision active, its progress on stderr; the cluster runs v2',
    cliExit === 0 && cliRevision.status === 'active' && cliErr.includes(`revision ${cliRevision.revision}: active`) && imageOf(kube.get('Deployment', NS, 'fraud-smoke')) === 'registry.example.com/fraud:v2',
    `exit ${cliExit}; stdout ${cliOut.slice(0, 300)}; stderr ${cliErr.slice(0, 500)}`,
  )

  // --- a canary through the binary: the new revision beside the stable one at 50 %, then 100 %, then active ---
  const canaryDeploy = await api('POST', '/api/v1/serve/fraud/deploy?wait=60', {
    env: 'smoke',
    artifact_version: 'v1',
    api_serve_deployment_config: { deployment_strategy: 'canary', canary: { steps: [50, 100], step_seconds: 0 } },
  })
  const canaryEvents = (await api('GET', `/api/v1/serve/fraud/deployments/${canaryDeploy.body?.data?.revision}`)).body?.data?.events?.map((e: { kind: string }) => e.kind)
  check(
    'a canary deploy (50 %, then 100 %) with ?wait= → 200, active; it stepped and was promoted; the cluster runs v1 and no canary Deployment',
    canaryDeploy.status === 200 &&
      canaryDeploy.body?.data?.status === 'active' &&
      JSON.stringify(canaryEvents) === JSON.stringify(['canary-started', 'canary-promoted']) &&
      imageOf(kube.get('Deployment', NS, 'fraud-smoke')) === 'registry.example.com/fraud:v1' &&
      kube.get('Deployment', NS, 'fraud-smoke-canary') === undefined,
    `${got(canaryDeploy)}; events ${JSON.stringify(canaryEvents)}`,
  )

  // --- undeploy: nothing of the serve is left ---
  const undeployed = await api('POST', '/api/v1/serve/fraud/undeploy', { env: 'smoke' })
  const left = kube.list().filter(ownedBy('fraud', 'smoke')).map((o) => `${o.kind}/${o.metadata.name}`)
  check('undeploy → 200 and the fake cluster holds none of its objects', undeployed.status === 200 && left.length === 0, `${got(undeployed)}; left ${left.join(', ')}`)

  // --- one click: an MLflow model ---
  const model = await api('POST', '/api/v1/serve/deploy-model?wait=30', { serve_name: 'mlflow-fraud', model_uri: 'models:/fraud/3', env: 'smoke', cores: 1, memory: 2 })
  const modelDeployment = kube.get('Deployment', NS, 'mlflow-fraud-smoke')
  check(
    'deploy-model with ?wait= → 200, active, on DEFAULT_RUNTIME',
    model.status === 200 && model.body?.data?.status === 'active' && imageOf(modelDeployment) === 'registry.example.com/mlflow-runtime:1.0',
    got(model),
  )
  const modelGone = await api('POST', '/api/v1/serve/undeploy-model', { serve_name: 'mlflow-fraud', env: 'smoke' })
  check('undeploy-model → 200 and its objects are gone', modelGone.status === 200 && kube.list().filter(ownedBy('mlflow-fraud', 'smoke')).length === 0, got(modelGone))

  // --- an environment on DCM ---
  const onDcm = await api('POST', '/api/v1/serve/fraud/deploy?wait=30', deployment('v1', 'smoke-dcm'))
  const registered = dcm.artifacts.get('smoke-dcm-fraud')
  check(
    'deploy to the DCM environment → 200, active; DCM registered the chart and started it',
    onDcm.status === 200 && onDcm.body?.data?.status === 'active' && registered?.darwin_resource === 'darwin-fastapi-serve' && (dcm.pods.get('smoke-dcm-fraud') ?? []).every((pod) => pod.status === 'Running'),
    got(onDcm),
  )
  const dcmReady = await api('GET', '/api/v1/serve/fraud/status/smoke-dcm')
  check('its status, read from the pods DCM reports → READY', dcmReady.status === 200 && dcmReady.body?.data?.status === 'READY', got(dcmReady))

  check('the healthcheck subcommand exits 0', Bun.spawnSync([binary, 'healthcheck'], { env: { PORT: String(port), ENV: 'smoke' } }).exitCode === 0)
} finally {
  child.kill('SIGTERM')
  const code = await Promise.race([child.exited, Bun.sleep(15_000).then(() => 'timeout' as const)])
  check('SIGTERM → exit 0', code === 0, `got ${code}`)
  if (code === 'timeout') child.kill('SIGKILL')
  check('the working directory is left empty (nothing read or written beside the binary)', readdirSync(workDir).length === 0, readdirSync(workDir).join(', '))
  clearInterval(controller)
  kube.stop()
  dcm.stop()
  await server.stop()
  rmSync(scratch, { recursive: true, force: true })
  rmSync(workDir, { recursive: true, force: true })
}

console.log(`smoke: ${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
