/** The shapes of the render pipeline: its input, its settings, what it produces, and the context its stages share. */
import type { Config } from '../config'

/** A Kubernetes object as plain data (what client-node's KubernetesObject describes, made concrete). */
export interface KubernetesObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace: string; labels: Record<string, string>; annotations?: Record<string, string> }
  [field: string]: unknown
}

export type NodeCapacityType = 'spot' | 'ondemand'

export interface RenderInput {
  serve: { name: string; type: 'api' | 'workflow'; description: string }
  environment: {
    name: string
    domain_suffix: string
    namespace: string
    cluster_name: string
    /** Comma-separated AWS security groups / subnets (as stored on the environment). */
    security_group: string
    subnets: string
    workflow_url: string
    /** How the objects reach the cluster; `dcm` also refuses what DCM's chart cannot install. Default kubernetes. */
    cluster_driver?: 'kubernetes' | 'dcm'
  }
  infra: {
    backend_type: 'fastapi' | 'ray'
    cores: number
    /** GiB. */
    memory: number
    min_replicas: number
    max_replicas: number
    node_capacity_type: NodeCapacityType
    /** Average CPU utilisation (%) the autoscaler aims for; default 70. */
    target_cpu_utilization?: number
    additional_hosts?: string[]
  }
  artifact: { version: string; image: string }
  deployment: {
    strategy: 'rolling' | 'recreate'
    max_surge?: string | number
    max_unavailable?: string | number
    environment_variables: Record<string, string>
    /** The deployment revision; put on the pod template so every redeploy rolls the pods. */
    revision?: number
  }
  mlflow?: {
    tracking_uri: string
    username?: string
    /**
     * Where the password is. Omitted: a Secret `{serve}-{env}-mlflow` that the cluster driver writes
     * from the value it is given at apply time (see `managedSecrets`). Never a literal in a manifest.
     */
    existing_password_secret?: { name: string; key: string }
  }
  /** Workflow serves only: the cron schedule of the workflow's runs. */
  workflow?: {
    schedule: string
    /** The job cluster's worker groups (the infra config's worker_node_config), each its own group in JOB_CLUSTER_SPEC. */
    worker_groups?: { cores_per_pods: number; memory_per_pods: number; min_pods: number; max_pods: number; node_capacity_type: NodeCapacityType }[]
  }
}

/** The settings rendering depends on: a slice of the service's Config. */
export type RenderSettings = Pick<Config, 'templatesDir' | 'env' | 'isLocal' | 'ingressBaseUrl' | 'kubeIngressClass' | 'istio' | 'albLogs' | 'deployedService' | 'jobClusterRuntime'>

/** A Secret the driver must write (from a value it holds) before the objects that reference it. */
export interface ManagedSecret {
  name: string
  namespace: string
  key: string
  labels: Record<string, string>
}

/** What DCM installs: the chart (`darwin_resource`), the artifact version and the values the chart reads (src/render/dcm-values.ts). */
export interface DcmRelease {
  darwinResource: string
  version: string
  values: Record<string, unknown>
  /** The env var the driver sets to the MLflow password at apply time (the chart has no Secret reference for the app container). */
  passwordEnv?: string
}

export interface RenderedServe {
  /** Sorted by kind (dependencies first), then name. */
  manifests: KubernetesObject[]
  managedSecrets: ManagedSecret[]
  /** FastAPI serves only: DCM has no chart for ray or workflow serves. */
  dcm?: DcmRelease
}

/** What every builder of a render reads: the input, the settings and what is derived once. */
export interface Context {
  input: RenderInput
  settings: RenderSettings
  name: string
  namespace: string
  labels: Record<string, string>
  /** Pod selector: only what never changes between revisions (Deployment selectors are immutable). */
  selector: Record<string, string>
  hosts: string[]
  mlflowSecret?: { name: string; key: string }
}
