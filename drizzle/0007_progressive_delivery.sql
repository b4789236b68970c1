CREATE TABLE `canary_rollouts` (
	`deployment_id` bigint unsigned NOT NULL,
	`stable_deployment_id` bigint unsigned NOT NULL,
	`phase` enum('stepping','promoting','promoted','rolled-back','aborted') NOT NULL,
	`step_index` int NOT NULL,
	`weight` int NOT NULL,
	`canary_replicas` int NOT NULL,
	`step_started_at` datetime(3) NOT NULL,
	`healthy_since` datetime(3),
	`restore_infra` json,
	`lease_until` datetime(3),
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `canary_rollouts_deployment_id` PRIMARY KEY(`deployment_id`)
);
--> statement-breakpoint
CREATE TABLE `deployment_events` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`deployment_id` bigint unsigned NOT NULL,
	`at` datetime(3) NOT NULL,
	`kind` enum('canary-started','canary-step','canary-promoted','canary-rolled-back','canary-aborted','rollout-failed','auto-rollback','removed') NOT NULL,
	`weight` int,
	`actor` varchar(100) NOT NULL,
	`detail` varchar(2048) NOT NULL,
	CONSTRAINT `deployment_events_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
ALTER TABLE `change_locks` MODIFY COLUMN `operation` enum('deploy','rollback','infra-update','one-click','undeploy','auto-rollback') NOT NULL;--> statement-breakpoint
ALTER TABLE `deployments` MODIFY COLUMN `reason` enum('deploy','rollback','infra-update','one-click','auto-rollback') NOT NULL;--> statement-breakpoint
ALTER TABLE `deployments` ADD `rolled_back_to` int;--> statement-breakpoint
ALTER TABLE `canary_rollouts` ADD CONSTRAINT `canary_rollouts_deployment_id_deployments_id_fk` FOREIGN KEY (`deployment_id`) REFERENCES `deployments`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `deployment_events` ADD CONSTRAINT `deployment_events_deployment_id_deployments_id_fk` FOREIGN KEY (`deployment_id`) REFERENCES `deployments`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX `deployment_events_deployment` ON `deployment_events` (`deployment_id`,`id`);