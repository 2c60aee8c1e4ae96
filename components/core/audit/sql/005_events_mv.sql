-- Audit pipeline, step 5: accepted rows of the parsed stream -> audit.events.
CREATE MATERIALIZED VIEW IF NOT EXISTS audit.events_mv {{on_cluster}}
TO audit.events
AS SELECT
    event_id,
    occurred_at,
    tenant,
    actor_type,
    actor_id,
    action,
    resource_type,
    resource_id,
    decision,
    reason,
    trace_id,
    source,
    attributes,
    now64(3, 'UTC') AS ingested_at,
    kafka_partition,
    kafka_offset
FROM audit.ingest_parsed
WHERE error_stage = ''
