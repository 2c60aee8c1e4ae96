-- Restore of the audit database from one backup, run by a release manager as audit_admin
-- (docs/runbooks/core-data.md, "Restore ClickHouse"). The target is audit after a loss (into a
-- cluster without the database), or audit_drill for a restore drill next to the live data.
-- The Kafka table and the view that reads it stay out: restored, they would start consuming
-- the audit topic as the live consumer group (and steal its messages); the schema Job creates
-- them again, last, so consumption resumes from the group's committed offsets.
RESTORE DATABASE audit AS {{target}} EXCEPT TABLES audit.kafka_queue, audit.ingest_parse_mv {{on_cluster}} FROM {{destination}}
