ALTER TABLE `idempotency_keys` MODIFY COLUMN `state` enum('in_progress','done','answer_lost') NOT NULL;--> statement-breakpoint
ALTER TABLE `idempotency_keys` MODIFY COLUMN `response_body` longtext;--> statement-breakpoint
ALTER TABLE `idempotency_keys` ADD `content_type` varchar(255);--> statement-breakpoint
ALTER TABLE `idempotency_keys` ADD `request_id` varchar(128);--> statement-breakpoint
ALTER TABLE `idempotency_keys` ADD `heartbeat_at` datetime(3);