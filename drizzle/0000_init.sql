CREATE TABLE `environments` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`name` varchar(63) NOT NULL,
	`domain_suffix` varchar(253) NOT NULL,
	`cluster_name` varchar(253) NOT NULL,
	`namespace` varchar(63) NOT NULL,
	`security_group` varchar(1024) NOT NULL DEFAULT '',
	`subnets` varchar(1024) NOT NULL DEFAULT '',
	`ft_redis_url` varchar(1024) NOT NULL DEFAULT '',
	`workflow_url` varchar(1024) NOT NULL DEFAULT '',
	`cluster_driver` enum('kubernetes','dcm') NOT NULL DEFAULT 'kubernetes',
	`kube_context` varchar(253) NOT NULL DEFAULT '',
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `environments_id` PRIMARY KEY(`id`),
	CONSTRAINT `environments_name_unique` UNIQUE(`name`)
);
