-- What a restore drill compares between the live database and the restored one: the rows
-- ingested before the cutoff (a time before the backup started, so every such row is in it),
-- counted and hashed without regard to order. Equal results mean the backup holds them all.
SELECT
    count() AS events,
    groupBitXor(cityHash64(event_id, occurred_at, tenant, action, resource_id, decision)) AS events_hash,
    (SELECT count() FROM {{database}}.ingest_errors WHERE received_at < {{cutoff}}) AS ingest_errors
FROM {{database}}.events
WHERE ingested_at < {{cutoff}}
