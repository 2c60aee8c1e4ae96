-- Audit pipeline, step 8: the transformation. Kafka message -> one row of
-- audit.ingest_parsed, carrying either a typed audit event (error_stage = '')
-- or the reason it was rejected. Creating this view starts consumption.
--
-- The contract is ../schema.md. Rules that shape this query:
-- * Total: every expression is defined for every input (JSONExtract*,
--   *OrNull/*OrZero, match). A message can be rejected, but it can never make
--   the insert throw: a throwing block is retried forever and stalls the
--   consumer for every tenant behind it.
-- * Strict: a field of the wrong JSON type is rejected, not coerced
--   (JSONExtractString would turn 5 into '5'), unknown and duplicate keys are
--   rejected (duplicate keys are read differently by different parsers), and
--   occurred_at must fall inside [now - retention, now + 10 minutes] so a
--   producer can neither write rows that TTL deletes at once nor spray
--   partitions (a block touching too many partitions throws).
-- * The first failed rule, prefixed by its field name, becomes the error.
CREATE MATERIALIZED VIEW IF NOT EXISTS audit.ingest_parse_mv {{on_cluster}}
TO audit.ingest_parsed
AS WITH
    ['event_id', 'occurred_at', 'actor', 'tenant', 'action', 'resource',
     'decision', 'reason', 'trace_id', 'source', 'attributes'] AS known_keys,
    JSONExtractKeys(message) AS top_keys,
    JSONExtractString(message, 'event_id') AS event_id_raw,
    JSONExtractString(message, 'occurred_at') AS occurred_at_raw,
    parseDateTime64BestEffortOrNull(occurred_at_raw, 3, 'UTC') AS occurred_at_parsed,
    JSONExtractKeys(message, 'actor') AS actor_keys,
    JSONExtractString(message, 'actor', 'type') AS actor_type_raw,
    JSONExtractString(message, 'actor', 'id') AS actor_id_raw,
    JSONExtractString(message, 'tenant') AS tenant_raw,
    JSONExtractString(message, 'action') AS action_raw,
    JSONExtractKeys(message, 'resource') AS resource_keys,
    JSONExtractString(message, 'resource', 'type') AS resource_type_raw,
    JSONExtractString(message, 'resource', 'id') AS resource_id_raw,
    JSONExtractString(message, 'decision') AS decision_raw,
    JSONExtractString(message, 'reason') AS reason_raw,
    JSONExtractString(message, 'trace_id') AS trace_id_raw,
    JSONExtractString(message, 'source') AS source_raw,
    JSONExtractKeysAndValuesRaw(message, 'attributes') AS attribute_pairs,
    JSONExtract(message, 'attributes', 'Map(String, String)') AS attributes_map,
    multiIf(
        NOT isValidJSON(message),
            'message: not valid JSON',
        JSONType(message) != 'Object',
            'message: top level must be a JSON object',
        length(top_keys) != length(arrayDistinct(top_keys)),
            'message: duplicate top-level key',
        NOT hasAll(known_keys, top_keys),
            concat('message: unknown field(s): ',
                   substring(arrayStringConcat(arrayFilter(k -> NOT has(known_keys, k), top_keys), ', '), 1, 200)),
        JSONType(message, 'event_id') != 'String'
            OR NOT match(event_id_raw, '^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'),
            'event_id: required, lowercase canonical RFC 9562 UUID',
        JSONType(message, 'occurred_at') != 'String'
            OR NOT match(occurred_at_raw, '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{3}(Z|[+-][0-9]{2}:[0-9]{2})$')
            OR occurred_at_parsed IS NULL,
            'occurred_at: required, RFC 3339 with milliseconds (2026-01-31T12:00:00.000Z)',
        occurred_at_parsed < now64(3, 'UTC') - toIntervalDay({{retention_days}})
            OR occurred_at_parsed > now64(3, 'UTC') + toIntervalMinute(10),
            'occurred_at: outside the accepted window (retention, or more than 10 minutes ahead)',
        JSONType(message, 'actor') != 'Object' OR arraySort(actor_keys) != ['id', 'type'],
            'actor: required, object with exactly the keys type and id',
        JSONType(message, 'actor', 'type') != 'String'
            OR actor_type_raw NOT IN ('user', 'service', 'agent', 'system'),
            'actor.type: one of user, service, agent, system',
        JSONType(message, 'actor', 'id') != 'String'
            OR lengthUTF8(actor_id_raw) NOT BETWEEN 1 AND 256 OR match(actor_id_raw, '[[:cntrl:]]'),
            'actor.id: required string, 1-256 characters, no control characters',
        JSONType(message, 'tenant') != 'String'
            OR NOT match(tenant_raw, '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
            'tenant: required, DNS label (lowercase, 1-63 characters)',
        JSONType(message, 'action') != 'String'
            OR length(action_raw) > 128 OR NOT match(action_raw, '^[a-z][a-z0-9_]*([.][a-z][a-z0-9_]*)+$'),
            'action: required, dot-separated lowercase segments (e.g. agent.run.start), at most 128 characters',
        JSONType(message, 'resource') != 'Object' OR arraySort(resource_keys) != ['id', 'type'],
            'resource: required, object with exactly the keys type and id',
        JSONType(message, 'resource', 'type') != 'String'
            OR NOT match(resource_type_raw, '^[a-z][a-z0-9_.-]{0,63}$'),
            'resource.type: required, lowercase identifier, at most 64 characters',
        JSONType(message, 'resource', 'id') != 'String'
            OR lengthUTF8(resource_id_raw) NOT BETWEEN 1 AND 256 OR match(resource_id_raw, '[[:cntrl:]]'),
            'resource.id: required string, 1-256 characters, no control characters',
        JSONType(message, 'decision') != 'String' OR decision_raw NOT IN ('allow', 'deny'),
            'decision: required, allow or deny',
        JSONHas(message, 'reason')
            AND (JSONType(message, 'reason') != 'String' OR lengthUTF8(reason_raw) > 1024),
            'reason: optional string, at most 1024 characters',
        decision_raw = 'deny' AND trimBoth(reason_raw) = '',
            'reason: required when decision is deny',
        JSONType(message, 'trace_id') != 'String'
            OR NOT match(trace_id_raw, '^[0-9a-f]{32}$') OR trace_id_raw = repeat('0', 32),
            'trace_id: required, 32 lowercase hex characters, not all zero (W3C Trace Context)',
        JSONType(message, 'source') != 'String'
            OR NOT match(source_raw, '^[a-z][a-z0-9-]{0,62}$'),
            'source: required, emitting service name (lowercase, at most 63 characters)',
        JSONHas(message, 'attributes')
            AND (JSONType(message, 'attributes') != 'Object'
                 OR length(attribute_pairs) > 64
                 OR length(attribute_pairs) != length(mapKeys(attributes_map))
                 OR length(arrayDistinct(arrayMap(p -> p.1, attribute_pairs))) != length(attribute_pairs)
                 OR NOT arrayAll(p -> match(p.1, '^[a-z][a-z0-9_.-]{0,63}$') AND startsWith(p.2, '"'), attribute_pairs)
                 OR NOT arrayAll(v -> lengthUTF8(v) <= 1024, mapValues(attributes_map))),
            'attributes: optional object of at most 64 unique lowercase keys with string values of at most 1024 characters',
        '') AS problem
SELECT
    multiIf(_error != '', 'format', problem != '', 'contract', '') AS error_stage,
    if(_error != '', _error, problem) AS error,
    if(_error != '', _raw_message, message) AS raw_message,
    _partition AS kafka_partition,
    _offset AS kafka_offset,
    toUUIDOrZero(event_id_raw) AS event_id,
    ifNull(occurred_at_parsed, toDateTime64(0, 3, 'UTC')) AS occurred_at,
    tenant_raw AS tenant,
    actor_type_raw AS actor_type,
    actor_id_raw AS actor_id,
    action_raw AS action,
    resource_type_raw AS resource_type,
    resource_id_raw AS resource_id,
    decision_raw AS decision,
    reason_raw AS reason,
    trace_id_raw AS trace_id,
    source_raw AS source,
    attributes_map AS attributes
FROM audit.kafka_queue
