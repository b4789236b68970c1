ALTER TABLE `deployments` MODIFY COLUMN `status` enum('pending','deploying','active','failed','superseded','undeployed','cancelled') NOT NULL;--> statement-breakpoint
ALTER TABLE `deployments` ADD `applied_at` datetime(3);--> statement-breakpoint
ALTER TABLE `deployments` ADD `removed_at` datetime(3);--> statement-breakpoint
-- Backfill: what earlier revisions applied (all but apply failures), and what an undeploy removed since.
UPDATE `deployments` SET `applied_at` = `created_at` WHERE `status` IN ('deploying','active','superseded','undeployed') OR (`status` = 'failed' AND (`failure_reason` IS NULL OR `failure_reason` NOT LIKE 'apply failed:%'));--> statement-breakpoint
UPDATE `deployments` d JOIN (SELECT `serve_id`, `environment_id`, MAX(`revision`) AS `last_undeployed` FROM `deployments` WHERE `status` = 'undeployed' GROUP BY `serve_id`, `environment_id`) u ON u.`serve_id` = d.`serve_id` AND u.`environment_id` = d.`environment_id` SET d.`removed_at` = COALESCE(d.`ended_at`, d.`updated_at`) WHERE d.`revision` <= u.`last_undeployed` AND d.`applied_at` IS NOT NULL;
