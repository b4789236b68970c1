CREATE TABLE `change_locks` (
	`serve_id` bigint unsigned NOT NULL,
	`environment_id` bigint unsigned NOT NULL,
	`operation` enum('deploy','rollback','infra-update','one-click','undeploy') NOT NULL,
	`deployment_id` bigint unsigned,
	`request_id` varchar(128) NOT NULL,
	`acquired_at` datetime(3) NOT NULL,
	`expires_at` datetime(3) NOT NULL,
	CONSTRAINT `change_locks_serve_id_environment_id_pk` PRIMARY KEY(`serve_id`,`environment_id`)
);
--> statement-breakpoint
CREATE TABLE `deployments` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`serve_id` bigint unsigned NOT NULL,
	`environment_id` bigint unsigned NOT NULL,
	`revision` int NOT NULL,
	`reason` enum('deploy','rollback','infra-update','one-click') NOT NULL,
	`rolled_back_from` int,
	`artifact_version` varchar(64) NOT NULL,
	`image` varchar(512) NOT NULL,
	`deployment_config` json NOT NULL,
	`infra_snapshot` json NOT NULL,
	`rendered` json NOT NULL,
	`manifests_yaml` longtext NOT NULL,
	`status` enum('pending','deploying','active','failed','superseded','undeployed') NOT NULL,
	`failure_reason` varchar(2048),
	`created_by` varchar(100) NOT NULL,
	`request_id` varchar(128) NOT NULL,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	`activated_at` datetime(3),
	`ended_at` datetime(3),
	CONSTRAINT `deployments_id` PRIMARY KEY(`id`),
	CONSTRAINT `deployments_serve_revision` UNIQUE(`serve_id`,`revision`)
);
--> statement-breakpoint
CREATE TABLE `scaling_events` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`serve_id` bigint unsigned NOT NULL,
	`environment_id` bigint unsigned NOT NULL,
	`at` datetime(3) NOT NULL,
	`from_min` int,
	`from_max` int,
	`to_min` int NOT NULL,
	`to_max` int NOT NULL,
	`windows` json NOT NULL,
	`outcome` enum('applied','failed') NOT NULL,
	`error` varchar(2048),
	CONSTRAINT `scaling_events_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `scaling_schedules` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`serve_id` bigint unsigned NOT NULL,
	`environment_id` bigint unsigned NOT NULL,
	`timezone` varchar(64) NOT NULL,
	`windows` json NOT NULL,
	`applied_min` int,
	`applied_max` int,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `scaling_schedules_id` PRIMARY KEY(`id`),
	CONSTRAINT `scaling_schedules_serve_environment` UNIQUE(`serve_id`,`environment_id`)
);
--> statement-breakpoint
ALTER TABLE `change_locks` ADD CONSTRAINT `change_locks_serve_id_serves_id_fk` FOREIGN KEY (`serve_id`) REFERENCES `serves`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `change_locks` ADD CONSTRAINT `change_locks_environment_id_environments_id_fk` FOREIGN KEY (`environment_id`) REFERENCES `environments`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `deployments` ADD CONSTRAINT `deployments_serve_id_serves_id_fk` FOREIGN KEY (`serve_id`) REFERENCES `serves`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `deployments` ADD CONSTRAINT `deployments_environment_id_environments_id_fk` FOREIGN KEY (`environment_id`) REFERENCES `environments`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `scaling_events` ADD CONSTRAINT `scaling_events_serve_id_serves_id_fk` FOREIGN KEY (`serve_id`) REFERENCES `serves`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `scaling_events` ADD CONSTRAINT `scaling_events_environment_id_environments_id_fk` FOREIGN KEY (`environment_id`) REFERENCES `environments`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `scaling_schedules` ADD CONSTRAINT `scaling_schedules_serve_id_serves_id_fk` FOREIGN KEY (`serve_id`) REFERENCES `serves`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `scaling_schedules` ADD CONSTRAINT `scaling_schedules_environment_id_environments_id_fk` FOREIGN KEY (`environment_id`) REFERENCES `environments`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX `deployments_serve_env` ON `deployments` (`serve_id`,`environment_id`,`revision`);--> statement-breakpoint
CREATE INDEX `deployments_status` ON `deployments` (`status`);--> statement-breakpoint
CREATE INDEX `scaling_events_serve_env_at` ON `scaling_events` (`serve_id`,`environment_id`,`at`);