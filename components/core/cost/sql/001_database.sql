-- Cost, step 1: the database Kubecost's allocations land in (docs/architecture/cost.md).
-- One idempotent statement per file, replayed by Core's ClickHouse schema Job after the audit DDL.
CREATE DATABASE IF NOT EXISTS cost {{on_cluster}}
