CREATE TABLE `artifacts` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`serve_id` bigint unsigned NOT NULL,
	`version` varchar(64) NOT NULL,
	`source` enum('build','prebuilt') NOT NULL,
	`github_repo_url` varchar(512),
	`branch` varchar(255),
	`commit` varchar(40),
	`dockerfile_path` varchar(512),
	`image` varchar(512),
	`status` enum('queued','building','succeeded','failed') NOT NULL,
	`builder_task_id` varchar(255),
	`failure_reason` varchar(2048),
	`logs_url` varchar(2048),
	`status_checked_at` datetime(3),
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `artifacts_id` PRIMARY KEY(`id`),
	CONSTRAINT `artifacts_serve_version` UNIQUE(`serve_id`,`version`)
);
--> statement-breakpoint
CREATE TABLE `infra_configs` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`serve_id` bigint unsigned NOT NULL,
	`environment_id` bigint unsigned NOT NULL,
	`backend_type` enum('fastapi','ray'),
	`cores` double,
	`memory` double,
	`min_replicas` int,
	`max_replicas` int,
	`node_capacity_type` enum('spot','ondemand'),
	`target_cpu_utilization` int,
	`additional_hosts` json,
	`workflow_config` json,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `infra_configs_id` PRIMARY KEY(`id`),
	CONSTRAINT `infra_configs_serve_environment` UNIQUE(`serve_id`,`environment_id`)
);
--> statement-breakpoint
CREATE TABLE `serves` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`name` varchar(32) NOT NULL,
	`type` enum('api','workflow') NOT NULL,
	`description` varchar(1024) NOT NULL DEFAULT '',
	`space` varchar(100) NOT NULL DEFAULT '',
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `serves_id` PRIMARY KEY(`id`),
	CONSTRAINT `serves_name_unique` UNIQUE(`name`)
);
--> statement-breakpoint
ALTER TABLE `artifacts` ADD CONSTRAINT `artifacts_serve_id_serves_id_fk` FOREIGN KEY (`serve_id`) REFERENCES `serves`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `infra_configs` ADD CONSTRAINT `infra_configs_serve_id_serves_id_fk` FOREIGN KEY (`serve_id`) REFERENCES `serves`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `infra_configs` ADD CONSTRAINT `infra_configs_environment_id_environments_id_fk` FOREIGN KEY (`environment_id`) REFERENCES `environments`(`id`) ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX `artifacts_serve_created` ON `artifacts` (`serve_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `artifacts_status_checked` ON `artifacts` (`status`,`status_checked_at`);--> statement-breakpoint
CREATE INDEX `serves_space` ON `serves` (`space`);