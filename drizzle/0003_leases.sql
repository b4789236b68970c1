CREATE TABLE `leases` (
	`name` varchar(100) NOT NULL,
	`holder` varchar(255) NOT NULL,
	`expires_at` datetime(3) NOT NULL,
	`acquired_at` datetime(3) NOT NULL,
	`renewed_at` datetime(3) NOT NULL,
	CONSTRAINT `leases_name` PRIMARY KEY(`name`)
);
