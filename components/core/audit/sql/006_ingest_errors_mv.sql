-- Audit pipeline, step 6: rejected rows of the parsed stream -> audit.ingest_errors.
CREATE MATERIALIZED VIEW IF NOT EXISTS audit.ingest_errors_mv {{on_cluster}}
TO audit.ingest_errors
AS SELECT
    now64(3, 'UTC') AS received_at,
    error_stage AS stage,
    error,
    raw_message,
    kafka_partition,
    kafka_offset
FROM audit.ingest_parsed
WHERE error_stage != ''
