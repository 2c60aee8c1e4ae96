-- Audit pipeline, step 2: the store of accepted audit events (one row per event).
-- * Plain (Replicated)MergeTree, not ReplacingMergeTree: Kafka delivery is
--   at-least-once, so a redelivered event can appear twice (same event_id,
--   kafka_partition, kafka_offset). Deduplicate at query time
--   (LIMIT 1 BY event_id); never let the engine silently replace an audit row
--   with another one that merely reuses its event_id.
-- * PARTITION BY month keeps partitions few and makes TTL drops cheap.
-- * ORDER BY (tenant, occurred_at) serves "what happened in tenant T between
--   A and B"; bloom filters serve "what did actor X do" and "show trace Y".
-- * TTL comes from the retention setting (days since occurred_at). The
--   ingest view rejects events older than the retention window, so nothing
--   is inserted only to be deleted at the next merge.
CREATE TABLE IF NOT EXISTS audit.events {{on_cluster}}
(
    event_id        UUID,
    occurred_at     DateTime64(3, 'UTC'),
    tenant          LowCardinality(String),
    actor_type      Enum8('user' = 1, 'service' = 2, 'agent' = 3, 'system' = 4),
    actor_id        String,
    action          LowCardinality(String),
    resource_type   LowCardinality(String),
    resource_id     String,
    decision        Enum8('allow' = 1, 'deny' = 2),
    reason          String,
    trace_id        FixedString(32),
    source          LowCardinality(String),
    attributes      Map(LowCardinality(String), String),
    ingested_at     DateTime64(3, 'UTC'),
    kafka_partition UInt64,
    kafka_offset    UInt64,
    INDEX idx_actor_id actor_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_trace_id trace_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = {{mergetree_engine}}
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant, occurred_at, event_id)
TTL toDateTime(occurred_at) + toIntervalDay({{retention_days}})
