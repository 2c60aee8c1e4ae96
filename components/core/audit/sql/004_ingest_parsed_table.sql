-- Audit pipeline, step 4: the parsed stream (Null engine: stores nothing).
-- 008 parses and validates each Kafka message exactly once and writes one row
-- here; 005 and 006 split the rows into audit.events (error_stage = '') and
-- audit.ingest_errors (everything else). Keeping the single validation
-- verdict in one place means the two sides can never disagree: every message
-- lands in exactly one of the two tables.
-- actor_type and decision stay String here; they become Enum8 only when 005
-- inserts rows that already passed validation, so a bad value can never make
-- an insert throw (which would stall the Kafka consumer on that message).
CREATE TABLE IF NOT EXISTS audit.ingest_parsed {{on_cluster}}
(
    error_stage     LowCardinality(String),
    error           String,
    raw_message     String,
    kafka_partition UInt64,
    kafka_offset    UInt64,
    event_id        UUID,
    occurred_at     DateTime64(3, 'UTC'),
    tenant          String,
    actor_type      String,
    actor_id        String,
    action          String,
    resource_type   String,
    resource_id     String,
    decision        String,
    reason          String,
    trace_id        String,
    source          String,
    attributes      Map(String, String)
)
ENGINE = Null
