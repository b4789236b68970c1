/**
 * All tables of the control plane. One table per concept; enums for states.
 * Ids are `bigint … autoincrement` (drizzle's `serial()` breaks on MariaDB); timestamps are
 * DATETIME(3) written by the application in UTC, so the server's time zone never matters.
 */
import { bigint, datetime, mysqlEnum, mysqlTable, varchar } from 'drizzle-orm/mysql-core'

export const CLUSTER_DRIVERS = ['kubernetes', 'dcm'] as const

const id = () => bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey()
const createdAt = () => datetime('created_at', { mode: 'date', fsp: 3 }).notNull().$defaultFn(() => new Date())
const updatedAt = () =>
  datetime('updated_at', { mode: 'date', fsp: 3 })
    .notNull()
    .$defaultFn(() => new Date())
    .$onUpdateFn(() => new Date())

export const environments = mysqlTable('environments', {
  id: id(),
  name: varchar('name', { length: 63 }).notNull().unique(),
  domainSuffix: varchar('domain_suffix', { length: 253 }).notNull(),
  clusterName: varchar('cluster_name', { length: 253 }).notNull(),
  namespace: varchar('namespace', { length: 63 }).notNull(),
  securityGroup: varchar('security_group', { length: 1024 }).notNull().default(''),
  subnets: varchar('subnets', { length: 1024 }).notNull().default(''),
  ftRedisUrl: varchar('ft_redis_url', { length: 1024 }).notNull().default(''),
  workflowUrl: varchar('workflow_url', { length: 1024 }).notNull().default(''),
  clusterDriver: mysqlEnum('cluster_driver', CLUSTER_DRIVERS).notNull().default('kubernetes'),
  /** kubeconfig context to use for this environment (Kubernetes driver); empty = current/in-cluster. */
  kubeContext: varchar('kube_context', { length: 253 }).notNull().default(''),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
})

export type EnvironmentRow = typeof environments.$inferSelect
