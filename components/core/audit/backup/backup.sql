-- Scheduled backup of the audit database (run by the CronJob clickhouse-audit-backup as the
-- BACKUP-only user audit_backup). The destination is S3(<url>, <access key id>, <secret key>):
-- the CronJob fills the three arguments at run time from its environment (the backup target's
-- ESO-managed Secret), quoted as SQL strings; the ConfigMap holds only markers.
BACKUP DATABASE audit {{on_cluster}} TO {{destination}}
