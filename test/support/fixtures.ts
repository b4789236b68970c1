/** Request bodies shared by tests. */
export const environmentConfigs = {
  domain_suffix: '.mycompany.com',
  cluster_name: 'prod-k8s-cluster',
  namespace: 'ml-serve',
  security_group: 'sg-12345, sg-67890',
  subnets: 'subnet-abc123, subnet-def456',
  ft_redis_url: 'redis://prod-redis:6379',
  workflow_url: 'http://workflow-service:8080',
}

export const environmentBody = (name: string, overrides: Record<string, unknown> = {}) => ({
  name,
  environment_configs: { ...environmentConfigs, ...overrides },
})
