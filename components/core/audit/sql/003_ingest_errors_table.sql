-- Audit pipeline, step 3: messages that could not become audit.events rows.
-- stage = 'format'   : the Kafka engine could not read the message at all
--                      (kafka_handle_error_mode = 'stream' hands us _error and
--                      _raw_message instead of stopping the consumer);
-- stage = 'contract' : valid JSON that breaks the contract in ../schema.md.
-- The raw message is kept verbatim so it can be fixed and replayed; the rows
-- are evidence too, so they keep the same retention as audit.events.
-- Partitioned by arrival time: a hostile occurred_at cannot fan out parts here.
CREATE TABLE IF NOT EXISTS audit.ingest_errors {{on_cluster}}
(
    received_at     DateTime64(3, 'UTC'),
    stage           Enum8('format' = 1, 'contract' = 2),
    error           String,
    raw_message     String,
    kafka_partition UInt64,
    kafka_offset    UInt64
)
ENGINE = {{mergetree_engine}}
PARTITION BY toYYYYMM(received_at)
ORDER BY (received_at, kafka_partition, kafka_offset)
TTL toDateTime(received_at) + toIntervalDay({{retention_days}})
