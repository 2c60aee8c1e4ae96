-- Audit pipeline, step 1: the database.
-- Every file in this directory holds exactly one statement and is idempotent
-- (IF NOT EXISTS), so the ClickHouse init can replay the whole directory on
-- every start. Files run in name order; see 007/008 for why the Kafka table
-- and its materialized view come last.
CREATE DATABASE IF NOT EXISTS audit {{on_cluster}}
