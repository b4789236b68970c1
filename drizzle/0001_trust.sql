CREATE TABLE `api_tokens` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`name` varchar(100) NOT NULL,
	`token_hash` char(64) NOT NULL,
	`token_prefix` varchar(16) NOT NULL,
	`scopes` json NOT NULL,
	`created_by` varchar(100) NOT NULL,
	`created_at` datetime(3) NOT NULL,
	`expires_at` datetime(3),
	`last_used_at` datetime(3),
	`revoked_at` datetime(3),
	CONSTRAINT `api_tokens_id` PRIMARY KEY(`id`),
	CONSTRAINT `api_tokens_name_unique` UNIQUE(`name`),
	CONSTRAINT `api_tokens_token_hash_unique` UNIQUE(`token_hash`)
);
--> statement-breakpoint
CREATE TABLE `audit_log` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`at` datetime(3) NOT NULL,
	`actor_token_id` bigint unsigned,
	`actor_name` varchar(100) NOT NULL,
	`action` varchar(200) NOT NULL,
	`resource_type` varchar(50) NOT NULL,
	`resource_name` varchar(255) NOT NULL,
	`outcome` enum('success','failure') NOT NULL,
	`status_code` int NOT NULL,
	`request_id` varchar(128) NOT NULL,
	`summary` json NOT NULL,
	CONSTRAINT `audit_log_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `idempotency_keys` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`idempotency_key` varchar(255) NOT NULL,
	`actor_token_id` bigint unsigned NOT NULL,
	`method` varchar(10) NOT NULL,
	`path` varchar(1024) NOT NULL,
	`request_hash` char(64) NOT NULL,
	`state` enum('in_progress','done') NOT NULL,
	`status_code` int,
	`response_body` text,
	`created_at` datetime(3) NOT NULL,
	`expires_at` datetime(3) NOT NULL,
	CONSTRAINT `idempotency_keys_id` PRIMARY KEY(`id`),
	CONSTRAINT `idempotency_keys_actor_key` UNIQUE(`actor_token_id`,`idempotency_key`)
);
--> statement-breakpoint
CREATE INDEX `audit_log_resource` ON `audit_log` (`resource_type`,`resource_name`,`at`);--> statement-breakpoint
CREATE INDEX `audit_log_actor` ON `audit_log` (`actor_name`,`at`);--> statement-breakpoint
CREATE INDEX `audit_log_at` ON `audit_log` (`at`);--> statement-breakpoint
CREATE INDEX `idempotency_keys_expires` ON `idempotency_keys` (`expires_at`);