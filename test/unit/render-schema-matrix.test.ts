/**
 * Every object the renderer can produce, over a generated matrix of inputs, checked against schemas
 * that are not the renderer's own: kubernetes-models (the API's OpenAPI schemas, compiled to ajv
 * validators) for the built-in kinds, @kubernetes-models/istio for the VirtualService, and for a
 * RayService (no KubeRay models package) its pod templates as core PodTemplateSpecs plus the CRD's
 * required fields by hand. On top: what the API server checks that an OpenAPI schema cannot say
 * (names per kind, label keys and values, annotation sizes, port names, selectors that select) and,
 * since kubernetes-models accepts unknown fields, client-node's models as an unknown-field check.
 *
 * A violation is reported with the input that produced it; the test fails listing them all.
 */
import { describe, expect, test } from 'bun:test'
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js'
import { VirtualService } from '@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler'
import { CronJob } from 'kubernetes-models/batch/v1/CronJob'
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress'
import { PodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec'
import { Secret } from 'kubernetes-models/v1/Secret'
import { Service } from 'kubernetes-models/v1/Service'
import YAML from 'yaml'
import { loadConfig } from '../../src/config'
import { AppError } from '../../src/lib/errors'
import { type KubernetesObject, type RenderInput, type RenderSettings, renderServe, secretObject } from '../../src/render'

// --- the API server's rules (k8s.io/apimachinery/pkg/util/validation) ---

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/
const ENV_VAR_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/
const CONFIG_MAP_KEY = /^[-._a-zA-Z0-9]+$/
const isLabel = (s: string) => typeof s === 'string' && s.length <= 63 && DNS1123_LABEL.test(s)
const isDns1035 = (s: string) => typeof s === 'string' && s.length <= 63 && DNS1035_LABEL.test(s)
const isSubdomain = (s: string) => typeof s === 'string' && s.length <= 253 && s.split('.').every(isLabel)
/** A host of an Ingress rule: a DNS-1123 subdomain, or `*.` and one. */
const isHost = (s: string) => isSubdomain(s.startsWith('*.') ? s.slice(2) : s)
const isQualifiedName = (key: string) => {
  const parts = key.split('/')
  if (parts.length > 2) return false
  const name = parts[parts.length - 1]!
  return name.length <= 63 && QUALIFIED_NAME.test(name) && (parts.length === 1 || (parts[0] !== '' && isSubdomain(parts[0]!)))
}
const isLabelValue = (s: string) => s.length <= 63 && LABEL_VALUE.test(s)
/** IANA_SVC_NAME: container port names and named target ports. */
const isPortName = (s: string) => s.length >= 1 && s.length <= 15 && /^[-a-z0-9]+$/.test(s) && /[a-z]/.test(s) && !s.startsWith('-') && !s.endsWith('-') && !s.includes('--')
const TOTAL_ANNOTATION_BYTES = 256 * 1024
/** What etcd takes in one request by default (--max-request-bytes 1.5 MiB). */
const OBJECT_BYTES_MAX = 1.5 * 1024 * 1024
const CRONJOB_NAME_MAX = 52
const RAYSERVICE_NAME_MAX = 47

type Violation = { input: string; object: string; message: string }
type Report = (message: string) => void

/** kubernetes-models' class of each built-in kind (and Istio's for the VirtualService). */
const MODEL: Record<string, { validate(obj: any): void; clientNode?: string }> = {
  'v1/Service': { validate: (o) => new Service(o).validate(), clientNode: 'V1Service' },
  'v1/Secret': { validate: (o) => new Secret(o).validate(), clientNode: 'V1Secret' },
  'apps/v1/Deployment': { validate: (o) => new Deployment(o).validate(), clientNode: 'V1Deployment' },
  'autoscaling/v2/HorizontalPodAutoscaler': { validate: (o) => new HorizontalPodAutoscaler(o).validate(), clientNode: 'V2HorizontalPodAutoscaler' },
  'networking.k8s.io/v1/Ingress': { validate: (o) => new Ingress(o).validate(), clientNode: 'V1Ingress' },
  'batch/v1/CronJob': { validate: (o) => new CronJob(o).validate(), clientNode: 'V1CronJob' },
  'networking.istio.io/v1beta1/VirtualService': { validate: (o) => new VirtualService(o).validate() },
  'ray.io/v1/RayService': { validate: () => {} }, // checked by hand below
}

/** Runs a kubernetes-models validation; its ValidationError lists every failing path. */
function schema(report: Report, what: string, run: () => void) {
  try {
    run()
  } catch (error) {
    const details = (error as { errors?: { instancePath: string; message?: string }[] }).errors
    if (details?.length) for (const e of details) report(`${what}: ${e.instancePath || '/'} ${e.message}`)
    else report(`${what}: ${(error as Error).message}`)
  }
}

/** client-node's models drop what they do not know: a field lost in the round trip is unknown or misplaced. */
function unknownFields(report: Report, plain: unknown, model: string) {
  const back = JSON.parse(JSON.stringify(ObjectSerializer.serialize(ObjectSerializer.deserialize(plain, model), model)))
  const walk = (a: unknown, b: unknown, path: string) => {
    if (a === null || typeof a !== 'object') return
    for (const [key, value] of Object.entries(a)) {
      const other = (b as Record<string, unknown> | undefined)?.[key]
      if (other === undefined) report(`unknown field ${path}/${key} (not in client-node's ${model})`)
      else walk(value, other, `${path}/${key}`)
    }
  }
  walk(plain, back, '')
}

function checkMetadata(report: Report, obj: KubernetesObject, namespace: string) {
  const { name, labels, annotations } = obj.metadata
  const kind = obj.kind
  if (kind === 'Service') {
    if (!isDns1035(name)) report(`name "${name}" is not a DNS-1035 label (Service)`)
  } else if (!isSubdomain(name)) report(`name "${name}" is not a DNS-1123 subdomain`)
  if (kind === 'CronJob' && name.length > CRONJOB_NAME_MAX) report(`CronJob name "${name}" has ${name.length} characters (max ${CRONJOB_NAME_MAX})`)
  if (kind === 'RayService' && name.length > RAYSERVICE_NAME_MAX) report(`RayService name "${name}" has ${name.length} characters (KubeRay max ${RAYSERVICE_NAME_MAX})`)
  if (obj.metadata.namespace !== namespace || !isLabel(obj.metadata.namespace)) report(`namespace "${obj.metadata.namespace}" (expected the DNS label ${namespace})`)
  checkLabels(report, 'metadata.labels', labels)
  checkAnnotations(report, 'metadata.annotations', annotations)
  const bytes = Buffer.byteLength(JSON.stringify(obj))
  if (bytes > OBJECT_BYTES_MAX) report(`object is ${bytes} bytes as JSON (etcd takes ${OBJECT_BYTES_MAX})`)
}

function checkLabels(report: Report, where: string, labels: Record<string, string> | undefined) {
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (!isQualifiedName(key)) report(`${where}: key "${key}" is not a qualified name`)
    if (typeof value !== 'string' || !isLabelValue(value)) report(`${where}: value ${JSON.stringify(value)} of "${key}" is not a valid label value`)
  }
}

function checkAnnotations(report: Report, where: string, annotations: Record<string, string> | undefined) {
  let total = 0
  for (const [key, value] of Object.entries(annotations ?? {})) {
    if (!isQualifiedName(key.toLowerCase())) report(`${where}: key "${key}" is not a qualified name`)
    if (typeof value !== 'string') report(`${where}: value of "${key}" is not a string`)
    total += Buffer.byteLength(key) + Buffer.byteLength(String(value))
  }
  if (total > TOTAL_ANNOTATION_BYTES) report(`${where}: ${total} bytes in all (max ${TOTAL_ANNOTATION_BYTES})`)
}

/** What the API server checks in a pod template beyond its schema. */
function checkPodTemplate(report: Report, where: string, template: any, opts: { job?: boolean } = {}) {
  schema(report, `${where} (kubernetes-models PodTemplateSpec)`, () => new PodTemplateSpec(JSON.parse(JSON.stringify(template))).validate())
  checkLabels(report, `${where}.metadata.labels`, template?.metadata?.labels)
  checkAnnotations(report, `${where}.metadata.annotations`, template?.metadata?.annotations)
  const spec = template?.spec ?? {}
  if (opts.job && !['Never', 'OnFailure'].includes(spec.restartPolicy)) report(`${where}: a Job's pods need restartPolicy Never or OnFailure (got ${spec.restartPolicy})`)
  checkLabels(report, `${where}.spec.nodeSelector`, spec.nodeSelector)
  for (const [i, t] of (spec.tolerations ?? []).entries()) {
    if (t.key !== undefined && !isQualifiedName(t.key)) report(`${where}.spec.tolerations[${i}]: key "${t.key}" is not a qualified name`)
    if (t.operator === 'Equal' && t.value !== undefined && !isLabelValue(t.value)) report(`${where}.spec.tolerations[${i}]: value "${t.value}" is not a label value`)
    if (t.operator === 'Exists' && t.value) report(`${where}.spec.tolerations[${i}]: operator Exists with a value`)
  }
  const containerNames = new Set<string>()
  const portNames = new Set<string>()
  for (const [i, c] of (spec.containers ?? []).entries()) {
    const at = `${where}.spec.containers[${i}]`
    if (!isLabel(c.name)) report(`${at}: name "${c.name}" is not a DNS-1123 label`)
    if (containerNames.has(c.name)) report(`${at}: duplicate container name "${c.name}"`)
    containerNames.add(c.name)
    if (typeof c.image !== 'string' || c.image.trim() === '' || c.image !== c.image.trim()) report(`${at}: image ${JSON.stringify(c.image)} is empty or padded`)
    const own = new Set<string>()
    for (const [j, p] of (c.ports ?? []).entries()) {
      if (!Number.isInteger(p.containerPort) || p.containerPort < 1 || p.containerPort > 65535) report(`${at}.ports[${j}]: containerPort ${p.containerPort} not in 1-65535`)
      if (p.name !== undefined) {
        if (!isPortName(p.name)) report(`${at}.ports[${j}]: name "${p.name}" is not an IANA_SVC_NAME`)
        if (portNames.has(p.name)) report(`${at}.ports[${j}]: duplicate port name "${p.name}" in the pod`)
        portNames.add(p.name)
        own.add(p.name)
      }
    }
    for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
      const port = c[probe]?.httpGet?.port
      if (typeof port === 'string' && !own.has(port)) report(`${at}.${probe}: named port "${port}" is not a port of the container`)
      const path = c[probe]?.httpGet?.path
      if (path !== undefined && !String(path).startsWith('/')) report(`${at}.${probe}: path "${path}" does not start with /`)
    }
    const seen = new Set<string>()
    for (const [j, e] of (c.env ?? []).entries()) {
      if (!ENV_VAR_NAME.test(e.name)) report(`${at}.env[${j}]: name "${e.name}" is not a C-identifier-like env var name`)
      if (seen.has(e.name)) report(`${at}.env[${j}]: duplicate env var "${e.name}" (the last one wins, silently)`)
      seen.add(e.name)
      if ((e.value !== undefined) === (e.valueFrom !== undefined)) report(`${at}.env[${j}]: "${e.name}" needs exactly one of value and valueFrom`)
      const ref = e.valueFrom?.secretKeyRef
      if (ref && (!isSubdomain(ref.name) || !CONFIG_MAP_KEY.test(ref.key))) report(`${at}.env[${j}]: secretKeyRef ${JSON.stringify(ref)} names no valid Secret key`)
      if (typeof e.value === 'string' && e.value.includes('\u0000')) report(`${at}.env[${j}]: NUL in the value of "${e.name}"`)
    }
    const requests = c.resources?.requests ?? {}
    const limits = c.resources?.limits ?? {}
    for (const resource of Object.keys(requests)) {
      if (limits[resource] !== undefined && quantity(requests[resource]) > quantity(limits[resource])) report(`${at}.resources: ${resource} request ${requests[resource]} exceeds its limit ${limits[resource]}`)
      if (!(quantity(requests[resource]) > 0)) report(`${at}.resources: ${resource} request ${requests[resource]} is not positive`)
    }
  }
  return portNames
}

const SUFFIX: Record<string, number> = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 }
function quantity(raw: string | number): number {
  const match = /^([+-]?[0-9.]+(?:[eE][-+]?[0-9]+)?)([a-zA-Z]*)$/.exec(String(raw))
  const factor = match ? SUFFIX[match[2]!] : undefined
  return match && factor !== undefined ? Number(match[1]) * factor : Number.NaN
}

/** Does a selector select the given pod labels? */
const selects = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v)

/** Every rendered object, and what they say about each other (selectors, backends, scale targets). */
function validateRender(objects: KubernetesObject[], namespace: string, report: (object: string, message: string) => void) {
  const pods: { labels: Record<string, string>; ports: Set<string> }[] = []
  const services = new Set<string>()
  const deployments = new Set<string>()
  const after: (() => void)[] = []
  for (const obj of objects) {
    const id = `${obj.kind}/${obj.metadata?.name}`
    const r: Report = (message) => report(id, message)
    const plain = JSON.parse(JSON.stringify(obj))
    const key = `${obj.apiVersion}/${obj.kind}`
    const model = MODEL[key]
    if (!model) {
      r(`no schema for ${key}: a kind this test does not know`)
      continue
    }
    schema(r, 'kubernetes-models', () => model.validate(plain))
    if (model.clientNode) unknownFields(r, plain, model.clientNode)
    checkMetadata(r, obj, namespace)
    const spec = plain.spec ?? {}
    switch (obj.kind) {
      case 'Deployment': {
        deployments.add(obj.metadata.name)
        const labels = spec.template?.metadata?.labels ?? {}
        const ports = checkPodTemplate(r, 'spec.template', spec.template)
        pods.push({ labels, ports })
        const match = spec.selector?.matchLabels ?? {}
        if (Object.keys(match).length === 0) r('spec.selector is empty')
        if (!selects(match, labels)) r('spec.selector does not match the template labels')
        checkLabels(r, 'spec.selector.matchLabels', match)
        if (spec.replicas !== undefined) r('spec.replicas is set: it fights the HPA on every apply')
        const { type, rollingUpdate } = spec.strategy ?? {}
        if (type === 'Recreate' && rollingUpdate) r('spec.strategy: rollingUpdate with type Recreate')
        if (type === 'RollingUpdate') {
          const zero = (v: unknown) => v === 0 || v === '0%'
          if (zero(rollingUpdate?.maxSurge) && zero(rollingUpdate?.maxUnavailable)) r('spec.strategy: maxSurge and maxUnavailable both 0')
          for (const field of ['maxSurge', 'maxUnavailable']) {
            const v = rollingUpdate?.[field]
            if (typeof v === 'string' && !/^[0-9]+%$/.test(v)) r(`spec.strategy.rollingUpdate.${field} "${v}" is neither an integer nor a percentage`)
            if (typeof v === 'number' && (!Number.isInteger(v) || v < 0)) r(`spec.strategy.rollingUpdate.${field} ${v} is not a whole number ≥ 0`)
          }
          const mu = rollingUpdate?.maxUnavailable
          if (typeof mu === 'string' && Number.parseInt(mu) > 100) r(`spec.strategy.rollingUpdate.maxUnavailable ${mu} over 100%`)
        }
        break
      }
      case 'Service': {
        services.add(obj.metadata.name)
        const selector = spec.selector ?? {}
        checkLabels(r, 'spec.selector', selector)
        for (const [i, p] of (spec.ports ?? []).entries()) {
          if (p.name !== undefined && !isLabel(p.name)) r(`spec.ports[${i}]: name "${p.name}" is not a DNS-1123 label`)
          if (typeof p.targetPort === 'string' && !isPortName(p.targetPort)) r(`spec.ports[${i}]: targetPort "${p.targetPort}" is not an IANA_SVC_NAME`)
        }
        after.push(() => {
          const selected = pods.filter((pod) => selects(selector, pod.labels))
          if (Object.keys(selector).length === 0 || selected.length === 0) r(`spec.selector ${JSON.stringify(selector)} selects none of the rendered pod templates`)
          for (const [i, p] of (spec.ports ?? []).entries()) {
            if (typeof p.targetPort === 'string' && selected.some((pod) => !pod.ports.has(p.targetPort))) r(`spec.ports[${i}]: targetPort "${p.targetPort}" is not a named port of every selected pod`)
          }
        })
        break
      }
      case 'HorizontalPodAutoscaler': {
        if (!(Number.isInteger(spec.minReplicas) && spec.minReplicas >= 1)) r(`spec.minReplicas ${spec.minReplicas} must be ≥ 1 (0 needs the HPAScaleToZero alpha gate)`)
        if (!(Number.isInteger(spec.maxReplicas) && spec.maxReplicas >= Math.max(1, spec.minReplicas ?? 1))) r(`spec.maxReplicas ${spec.maxReplicas} must be ≥ 1 and ≥ minReplicas ${spec.minReplicas}`)
        for (const [i, m] of (spec.metrics ?? []).entries()) {
          const u = m.resource?.target?.averageUtilization
          if (u !== undefined && !(Number.isInteger(u) && u > 0)) r(`spec.metrics[${i}]: averageUtilization ${u} must be a whole number > 0`)
        }
        const target = spec.scaleTargetRef ?? {}
        after.push(() => {
          if (target.kind !== 'Deployment' || target.apiVersion !== 'apps/v1' || !deployments.has(target.name)) r(`spec.scaleTargetRef ${JSON.stringify(target)} is not a rendered Deployment`)
        })
        break
      }
      case 'Ingress': {
        for (const [i, rule] of (spec.rules ?? []).entries()) {
          if (rule.host !== undefined && !isHost(rule.host)) r(`spec.rules[${i}]: host "${rule.host}" is not a DNS-1123 subdomain`)
          for (const [j, p] of (rule.http?.paths ?? []).entries()) {
            if (!String(p.path).startsWith('/')) r(`spec.rules[${i}].paths[${j}]: path "${p.path}" does not start with /`)
            const name = p.backend?.service?.name
            if (!isDns1035(name ?? '')) r(`spec.rules[${i}].paths[${j}]: backend service "${name}" is not a DNS-1035 label`)
            const port = p.backend?.service?.port ?? {}
            if ((port.name === undefined) === (port.number === undefined)) r(`spec.rules[${i}].paths[${j}]: backend port needs exactly one of name and number`)
            if (port.name !== undefined && !isPortName(port.name)) r(`spec.rules[${i}].paths[${j}]: backend port "${port.name}" is not an IANA_SVC_NAME`)
            after.push(() => services.has(name) || r(`spec.rules[${i}].paths[${j}]: backend service "${name}" is not rendered`))
          }
        }
        const hosts = (spec.rules ?? []).map((rule: { host?: string }) => rule.host ?? '')
        if (new Set(hosts).size !== hosts.length) r(`spec.rules: duplicate hosts ${JSON.stringify(hosts)}`)
        if (!spec.ingressClassName || !isSubdomain(spec.ingressClassName)) r(`spec.ingressClassName "${spec.ingressClassName}" is not a DNS-1123 subdomain`)
        break
      }
      case 'VirtualService': {
        if (!Array.isArray(spec.hosts) || spec.hosts.length === 0) r('spec.hosts is empty')
        // Istio allows a wildcard host on a VirtualService bound to a gateway: "*" (any host) or "*.suffix".
        const wildcard = (host: string) => host === '*' || (host.startsWith('*.') && isHost(host.slice(2)))
        for (const host of spec.hosts ?? []) if (!isHost(host) && !wildcard(host)) r(`spec.hosts: "${host}" is not a DNS name`)
        for (const gateway of spec.gateways ?? []) {
          const [ns, name, ...rest] = String(gateway).split('/')
          if (rest.length > 0 || !isLabel(ns ?? '') || !isSubdomain(name ?? '')) r(`spec.gateways: "${gateway}" is not namespace/name`)
        }
        for (const [i, route] of (spec.http ?? []).entries()) {
          for (const [j, d] of (route.route ?? []).entries()) {
            const host = d.destination?.host ?? ''
            const [svc, ns] = host.split('.')
            if (!isSubdomain(host)) r(`spec.http[${i}].route[${j}]: destination host "${host}" is not a DNS name`)
            after.push(() => (services.has(svc) && ns === namespace) || r(`spec.http[${i}].route[${j}]: destination "${host}" is not a rendered Service`))
          }
        }
        break
      }
      case 'CronJob': {
        if (typeof spec.schedule !== 'string' || spec.schedule.trim() === '') r('spec.schedule is empty')
        checkLabels(r, 'spec.jobTemplate.metadata.labels', spec.jobTemplate?.metadata?.labels)
        checkPodTemplate(r, 'spec.jobTemplate.spec.template', spec.jobTemplate?.spec?.template, { job: true })
        // The API server names the Jobs `{name}-{schedule time}` and their pods after the Job: 63 at most.
        break
      }
      case 'RayService': {
        if (typeof spec.serveConfigV2 !== 'string') r('spec.serveConfigV2 is not a string')
        else {
          try {
            const config = YAML.parse(spec.serveConfigV2)
            if (!Array.isArray(config?.applications) || config.applications.length === 0) r('spec.serveConfigV2 has no applications')
          } catch (error) {
            r(`spec.serveConfigV2 is not YAML: ${(error as Error).message}`)
          }
        }
        const cluster = spec.rayClusterConfig
        if (!cluster || typeof cluster !== 'object') {
          r('spec.rayClusterConfig is missing')
          break
        }
        const head = cluster.headGroupSpec
        const stringMap = (where: string, params: unknown) => {
          if (params === null || typeof params !== 'object' || Array.isArray(params)) return r(`${where} is required (a map of strings)`)
          for (const [k, v] of Object.entries(params)) if (typeof v !== 'string') r(`${where}.${k} is ${typeof v}, the CRD takes strings`)
        }
        stringMap('spec.rayClusterConfig.headGroupSpec.rayStartParams', head?.rayStartParams)
        if (!head?.template) r('spec.rayClusterConfig.headGroupSpec.template is required')
        else {
          const ports = checkPodTemplate(r, 'headGroupSpec.template', head.template)
          pods.push({ labels: head.template.metadata?.labels ?? {}, ports })
        }
        const groups = cluster.workerGroupSpecs
        if (!Array.isArray(groups)) r('spec.rayClusterConfig.workerGroupSpecs is not a list')
        const groupNames = new Set<string>()
        for (const [i, group] of (groups ?? []).entries()) {
          const at = `workerGroupSpecs[${i}]`
          if (typeof group.groupName !== 'string' || !isLabel(group.groupName)) r(`${at}.groupName ${JSON.stringify(group.groupName)} is required (a DNS label)`)
          if (groupNames.has(group.groupName)) r(`${at}.groupName "${group.groupName}" is not unique`)
          groupNames.add(group.groupName)
          stringMap(`${at}.rayStartParams`, group.rayStartParams)
          const { minReplicas: min, maxReplicas: max, replicas } = group
          if (!(Number.isInteger(min) && min >= 0)) r(`${at}.minReplicas ${min} is not a whole number ≥ 0`)
          if (!(Number.isInteger(max) && max >= min)) r(`${at}.maxReplicas ${max} is not a whole number ≥ minReplicas ${min}`)
          if (replicas !== undefined && !(replicas >= min && replicas <= max)) r(`${at}.replicas ${replicas} outside [${min}, ${max}]`)
          if (!group.template) r(`${at}.template is required`)
          else pods.push({ labels: group.template.metadata?.labels ?? {}, ports: checkPodTemplate(r, `${at}.template`, group.template) })
        }
        break
      }
    }
  }
  for (const check of after) check()
}

// --- the matrix ---

const settings = (env: Record<string, string>): RenderSettings => loadConfig({ ENV: 'prod', ENABLE_OTEL: 'false', ...env })

const ROUTINGS: Record<string, { settings: RenderSettings; domain_suffix: string }> = {
  'ingress-alb': { settings: settings({ KUBE_INGRESS_CLASS: 'alb', ALB_LOGS_ENABLED: 'true', ALB_LOGS_BUCKET: 'logs-bucket', ALB_LOGS_PREFIX: 'serves' }), domain_suffix: '.ml.example.com' },
  'ingress-nginx': { settings: settings({ KUBE_INGRESS_CLASS: 'nginx' }), domain_suffix: 'ml.example.com' },
  istio: { settings: settings({ ENABLE_ISTIO: 'true', ISTIO_SERVICE_NAME: 'mesh-gw', ISTIO_NAMESPACE: 'mesh' }), domain_suffix: '.ml.example.com' },
  'env-local': { settings: loadConfig({ ENV: 'local', ENABLE_OTEL: 'false' }), domain_suffix: '.ml.example.com' },
  'empty-domain-suffix': { settings: settings({ KUBE_INGRESS_CLASS: 'alb', JOB_CLUSTER_RUNTIME: 'ray-2.37-py310' }), domain_suffix: '' },
  'istio-empty-domain-suffix': { settings: settings({ ENABLE_ISTIO: 'true' }), domain_suffix: '' },
}

const STRATEGIES: Record<string, Pick<RenderInput['deployment'], 'strategy' | 'max_surge' | 'max_unavailable'>> = {
  'rolling-numbers': { strategy: 'rolling', max_surge: 0, max_unavailable: 1 },
  'rolling-percents': { strategy: 'rolling', max_surge: '100%', max_unavailable: '100%' },
  'rolling-defaults': { strategy: 'rolling' },
  'rolling-largest': { strategy: 'rolling', max_surge: 1000, max_unavailable: 1000 },
  recreate: { strategy: 'recreate' },
}

/** A DNS label of exactly `length` characters, starting with a letter. */
const labelOf = (length: number, seed: string) => (length === 1 ? seed[0]! : `${seed[0]}${'-x9'.repeat(length).slice(0, length - 2)}${seed[1] ?? '0'}`)

/**
 * (serve, env) names per kind: the shortest; the longest environment (20) with the longest serve the
 * kind allows with it; the longest serve (32) with the longest environment that allows it.
 */
function names(kind: 'workflow' | 'ray' | 'fastapi', profile: number): { serve: string; env: string } {
  const limit = kind === 'workflow' ? CRONJOB_NAME_MAX : kind === 'ray' ? RAYSERVICE_NAME_MAX : 63
  if (profile === 0) return { serve: 's', env: 'e' }
  if (profile === 1) return { serve: labelOf(Math.min(32, limit - 1 - 20), 'sv'), env: labelOf(20, 'e1') }
  return { serve: labelOf(32, 'sv'), env: labelOf(Math.min(20, limit - 1 - 32), 'e2') }
}

const UNICODE = 'Modèle de fraude — 日本語のモデル 🚀 ﷽ Ωμέγα\u200d\u00a0"quoted" \'single\' {json: [1]} # not a comment\n\tsecond line'
const manyVariables = (count: number) =>
  Object.fromEntries(
    Array.from({ length: count }, (_, i) => [
      [`VAR_${i}`, `lower.case-${i}`, `_Mixed_${i}`, `v${i}`][i % 4]!,
      [UNICODE, 'yes', '', `${i}`, '0o17', 'x'.repeat(1000), '~', '2001-12-14', 'true', '1:20'][i % 10]!,
    ]),
  )

const EDGES = {
  names: [0, 1, 2],
  cores: [0.5, 1.25, 2, 0.001],
  memory: [0.25, 512, 1.5],
  replicas: [
    [1, 1],
    [1, 100],
    [0, 100],
    [100, 100],
  ] as [number, number][],
  description: ['', UNICODE, 'é'.repeat(1024)],
  // None; 200 (the most allowed); 8 of 32,760 bytes (names and values together just under the 256 KiB allowed); a few that collide upper-cased.
  variables: [{}, manyVariables(200), Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`BIG${i}`, 'x'.repeat(32_760)])), { model_name: 'fraud', Model_Name: 'shadowed', RAY_SERVE_IMPORT_PATH: 'pkg.app:serve', Threshold: UNICODE }],
  hosts: [[], Array.from({ length: 10 }, (_, i) => (i % 3 === 0 ? ` H${i}.Internal.Example.COM ` : `h${i}-${'a'.repeat(50)}.internal.example.com`))],
  workerGroups: [undefined, 1, 4],
  mlflow: ['off', 'managed', 'existing'] as const,
  artifact: [
    { version: 'v1.2.0', image: 'registry.example.com:5000/darwin/fraud:v1.2.0' },
    { version: `2024.06.11+build/${'7'.repeat(80)}`, image: `registry.example.com/team/fraud@sha256:${'a'.repeat(64)}` },
  ],
  namespace: ['ml-serve', `n${'s'.repeat(61)}1`],
  revision: [undefined, 1, 2_147_483_647],
  targetCpu: [undefined, 1, 100],
}
type EdgeKey = keyof typeof EDGES

interface Case {
  label: string
  input: RenderInput
  settings: RenderSettings
}

function* matrix(): Generator<Case> {
  let base = 0
  const PROFILES = 12
  for (const type of ['api', 'workflow'] as const)
    for (const backend of ['fastapi', 'ray'] as const)
      for (const capacity of ['spot', 'ondemand'] as const)
        for (const [routing, route] of Object.entries(ROUTINGS))
          for (const [strategyName, strategy] of Object.entries(STRATEGIES))
            for (let profile = 0; profile < PROFILES; profile++) {
              // Every edge value meets every base combination (profile ≥ each list's length), shifted by the base so joint choices vary too.
              const pick = <K extends EdgeKey>(key: K, stride: number): (typeof EDGES)[K][number] => {
                const list = EDGES[key] as readonly unknown[]
                return list[(profile * stride + base) % list.length] as (typeof EDGES)[K][number]
              }
              const kind = type === 'workflow' ? 'workflow' : backend
              const { serve, env } = names(kind, pick('names', 1) as number)
              let [min, max] = pick('replicas', 1) as [number, number]
              if (min === 0 && backend !== 'ray') min = 1 // min_replicas 0 only where valid: ray workers
              const groupCount = pick('workerGroups', 1) as number | undefined
              const mlflow = pick('mlflow', 1)
              const input: RenderInput = {
                serve: { name: serve, type, description: pick('description', 1) as string },
                environment: {
                  name: env,
                  domain_suffix: route.domain_suffix,
                  namespace: pick('namespace', 1) as string,
                  cluster_name: 'prod-k8s',
                  security_group: pick('hosts', 1).length ? 'sg-1, sg-2,,' : '',
                  subnets: 'subnet-a, subnet-b',
                  workflow_url: `http://workflow.example.com:8080/${'p'.repeat(1000)}`,
                },
                infra: {
                  backend_type: backend,
                  cores: pick('cores', 1) as number,
                  memory: pick('memory', 1) as number,
                  min_replicas: min,
                  max_replicas: max,
                  node_capacity_type: capacity,
                  target_cpu_utilization: pick('targetCpu', 1) as number | undefined,
                  additional_hosts: [...(pick('hosts', 1) as string[])],
                },
                artifact: { ...(pick('artifact', 1) as { version: string; image: string }) },
                deployment: { ...strategy, environment_variables: { ...(pick('variables', 1) as Record<string, string>) }, revision: pick('revision', 1) as number | undefined },
                ...(mlflow === 'off' ? {} : { mlflow: { tracking_uri: 'https://mlflow.example.com', username: 'svc-ünïcode', ...(mlflow === 'existing' ? { existing_password_secret: { name: 'shared.mlflow-credentials', key: 'mlflow_password.v2' } } : {}) } }),
                ...(type === 'workflow'
                  ? {
                      workflow: {
                        schedule: '*/15 3 * * 1-5',
                        ...(groupCount === undefined
                          ? {}
                          : { worker_groups: Array.from({ length: groupCount }, (_, g) => ({ cores_per_pods: [0.5, 1.25, 8, 64][g]!, memory_per_pods: [0.25, 512, 4, 16][g]!, min_pods: g === 0 ? 0 : 1, max_pods: 100, node_capacity_type: g % 2 ? ('ondemand' as const) : ('spot' as const) })) }),
                      },
                    }
                  : {}),
              }
              const label = [type, backend, capacity, routing, strategyName, `serve=${serve.length}`, `env=${env.length}`, `cores=${input.infra.cores}`, `memory=${input.infra.memory}`, `replicas=${min}-${max}`, `vars=${Object.keys(input.deployment.environment_variables).length}`, `hosts=${input.infra.additional_hosts!.length}`, `groups=${groupCount ?? '-'}`, `mlflow=${mlflow}`, `ns=${input.environment.namespace.length}`, `revision=${input.deployment.revision ?? '-'}`, `target=${input.infra.target_cpu_utilization ?? '-'}`, `version=${input.artifact.version.length}`].join(' ')
              yield { label, input, settings: route.settings }
              if (profile === PROFILES - 1) base++
            }
}

describe('every rendered object against independent schemas', () => {
  test('the input matrix renders valid objects of every kind, or is refused with a 422', () => {
    const started = performance.now()
    const violations: Violation[] = []
    const byKind: Record<string, number> = {}
    const refusals: Record<string, number> = {}
    let inputs = 0
    let rendered = 0
    let refused = 0
    const reached = new Set<string>()
    for (const { label, input, settings } of matrix()) {
      inputs++
      let result
      try {
        result = renderServe(input, settings)
      } catch (error) {
        if (error instanceof AppError && error.status === 422) {
          refused++
          for (const e of error.errors ?? []) refusals[`${e.path}: ${e.message.replace(/\d+/g, 'N')}`] = (refusals[`${e.path}: ${e.message.replace(/\d+/g, 'N')}`] ?? 0) + 1
          continue
        }
        violations.push({ input: label, object: '-', message: `renderServe threw ${(error as Error).stack}` })
        continue
      }
      rendered++
      for (const o of result.manifests) {
        const spec = o.spec as any
        reached.add(`${o.kind} name ${o.metadata.name.length}`)
        const pod = o.kind === 'Deployment' ? spec.template : o.kind === 'CronJob' ? spec.jobTemplate.spec.template : o.kind === 'RayService' ? spec.rayClusterConfig.headGroupSpec.template : undefined
        if (pod && pod.spec.containers[0].env.length > 200) reached.add(`${o.kind} over 200 env`)
        if (o.kind === 'Ingress' && spec.rules.length === 11) reached.add('Ingress 11 hosts')
        if (o.kind === 'VirtualService' && spec.hosts.length === 11) reached.add('VirtualService 11 hosts')
        if (o.kind === 'RayService' && spec.rayClusterConfig.workerGroupSpecs[0].minReplicas === 0) reached.add('RayService min 0')
        if (o.kind === 'HorizontalPodAutoscaler' && spec.maxReplicas === 100) reached.add('HPA max 100')
        if (o.kind === 'CronJob') reached.add(`CronJob worker groups ${JSON.parse(pod.spec.containers[0].env.find((e: any) => e.name === 'JOB_CLUSTER_SPEC').value).worker_groups.length}`)
      }
      const objects = [...result.manifests, ...result.managedSecrets.map((secret) => secretObject(secret, 's3cr3t\n'))]
      for (const object of objects) byKind[object.kind] = (byKind[object.kind] ?? 0) + 1
      validateRender(objects, input.environment.namespace, (object, message) => violations.push({ input: label, object, message }))
    }
    const validated = Object.values(byKind).reduce((a, b) => a + b, 0)
    const seconds = ((performance.now() - started) / 1000).toFixed(1)
    // Distinct violations first (one line per object and message), then how often each was seen.
    const distinct = new Map<string, { first: Violation; count: number }>()
    for (const v of violations) {
      const key = `${v.object.split('/')[0]}: ${v.message.replace(/"[^"]*"/g, '"…"').replace(/\d+/g, 'N')}`
      const seen = distinct.get(key)
      if (seen) seen.count++
      else distinct.set(key, { first: v, count: 1 })
    }
    for (const { first, count } of distinct.values()) console.log(`VIOLATION ×${count}: ${first.object}: ${first.message}\n    first input: ${first.input}`)
    console.log(`refusals (422): ${JSON.stringify(refusals)}`)
    console.log(`schema matrix: ${inputs} inputs, ${rendered} rendered (${refused} refused with 422), ${validated} objects validated by kind ${JSON.stringify(Object.fromEntries(Object.entries(byKind).sort()))}, ${violations.length} violations (${seconds}s)`)
    expect(violations.length === 0 ? [] : [...distinct.values()].map(({ first, count }) => `×${count} ${first.object}: ${first.message} [${first.input}]`)).toEqual([])
    // The matrix did reach every kind and both outcomes.
    expect(Object.keys(byKind).sort()).toEqual(['CronJob', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'RayService', 'Secret', 'Service', 'VirtualService'])
    expect(rendered).toBeGreaterThan(inputs / 2)
    // …and its edges: names at each kind's limit, the most variables and hosts, ray at 0, several worker groups.
    const edges = ['CronJob name 52', 'RayService name 47', 'Service name 53', 'Deployment name 53', 'Deployment over 200 env', 'RayService over 200 env', 'CronJob over 200 env', 'Ingress 11 hosts', 'VirtualService 11 hosts', 'RayService min 0', 'HPA max 100', 'CronJob worker groups 1', 'CronJob worker groups 4']
    expect(edges.filter((edge) => !reached.has(edge))).toEqual([])
  })

  test('the validators do catch what they are here for', () => {
    const bad: KubernetesObject = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'Bad_Name', namespace: 'ns', labels: { 'x/y/z': 'a b' }, annotations: { big: 'x'.repeat(TOTAL_ANNOTATION_BYTES) } },
      spec: {
        selector: { matchLabels: { app: 'other' } },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: '0%' } },
        template: { metadata: { labels: { app: 'a' } }, spec: { containers: [{ name: 'App', image: 'i', resources: { requests: { cpu: 'lots' } }, bogus: true, env: [{ name: 'A=B', value: 'x' }] }] } },
      },
    }
    const found: string[] = []
    validateRender([bad], 'ns', (_, message) => found.push(message))
    const expected = [
      /kubernetes-models: \/spec\/template\/spec\/containers\/0\/resources\/requests\/cpu must match format "quantity"/,
      /unknown field \/spec\/template\/spec\/containers\/0\/bogus/,
      /name "Bad_Name" is not a DNS-1123 subdomain/,
      /key "x\/y\/z" is not a qualified name/,
      /value "a b" of "x\/y\/z" is not a valid label value/,
      /metadata.annotations: \d+ bytes in all/,
      /spec.selector does not match the template labels/,
      /maxSurge and maxUnavailable both 0/,
      /name "App" is not a DNS-1123 label/,
      /name "A=B" is not a C-identifier-like env var name/,
    ]
    for (const pattern of expected) expect(found.some((m) => pattern.test(m)), `${pattern} in ${JSON.stringify(found, null, 1)}`).toBe(true)
    const ray: KubernetesObject = { apiVersion: 'ray.io/v1', kind: 'RayService', metadata: { name: 'r'.repeat(48), namespace: 'ns', labels: {} }, spec: { serveConfigV2: {}, rayClusterConfig: { headGroupSpec: { rayStartParams: { 'num-cpus': 0 }, template: { spec: { containers: [{ name: 'h', image: 'i' }] } } }, workerGroupSpecs: [{ rayStartParams: {}, minReplicas: 3, maxReplicas: 2, template: { spec: { containers: [{}] } } }] } } }
    const rayFound: string[] = []
    validateRender([ray], 'ns', (_, message) => rayFound.push(message))
    for (const pattern of [/RayService name/, /serveConfigV2 is not a string/, /num-cpus is number/, /groupName undefined is required/, /maxReplicas 2 is not a whole number ≥ minReplicas 3/, /PodTemplateSpec\): \/spec\/containers\/0 must have required property '?name'?/]) {
      expect(rayFound.some((m) => pattern.test(m)), `${pattern} in ${JSON.stringify(rayFound, null, 1)}`).toBe(true)
    }
  })
})
