-- Audit pipeline, step 7: the Kafka consumer table.
-- JSONAsString hands each message over as one String; all parsing and
-- validation happens in 008, where a failure becomes an ingest_errors row
-- instead of an exception. kafka_handle_error_mode = 'stream' covers what is
-- left (a message that is not even a JSON object): the row arrives with
-- _error and _raw_message set instead of stopping the consumer.
-- The table consumes nothing until a materialized view reads it (008), which
-- is why it is created after everything downstream exists.
-- On a cluster every replica runs a consumer in the same group, so Kafka
-- spreads the partitions over the replicas and each one inserts locally.
-- TLS / SASL settings for the brokers belong in the server's <kafka> config
-- (mounted from a Secret), never in this DDL.
CREATE TABLE IF NOT EXISTS audit.kafka_queue {{on_cluster}}
(
    message String
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = '{{brokers}}',
    kafka_topic_list = '{{topic}}',
    kafka_group_name = '{{consumer_group}}',
    kafka_format = 'JSONAsString',
    kafka_handle_error_mode = 'stream'
