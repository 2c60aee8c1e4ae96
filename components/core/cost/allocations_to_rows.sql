-- Kubecost allocation API response -> cost.allocations rows (docs/architecture/cost.md, "Ingest").
-- The source placeholder is a table of one String column `json` holding the whole response: in the CronJob
-- url('<kubecost>/allocation?...', JSONAsString, 'json String'), in the tests format(JSONAsString, ...).
-- The response is {"code": 200, "data": [{"<name>": {allocation}, ...}, ...]}: one map per step;
-- Kubecost's own rows (__idle__, __unmounted__) are kept under their names as namespace. A workload's phase
-- is its somaagenthub.io/phase label, else its namespace's phase in the stack settings (phase namespaces).
SELECT
    parseDateTime64BestEffort(JSONExtractString(allocation, 'window', 'start'))::DateTime('UTC') AS window_start,
    parseDateTime64BestEffort(JSONExtractString(allocation, 'window', 'end'))::DateTime('UTC') AS window_end,
    JSONExtractString(allocation, 'properties', 'cluster') AS cluster,
    if(JSONExtractString(allocation, 'properties', 'namespace') != '', JSONExtractString(allocation, 'properties', 'namespace'), name) AS namespace,
    coalesce(nullIf(JSONExtractString(allocation, 'properties', 'labels', 'somaagenthub_io_phase'), ''),
             nullIf(JSONExtractString(allocation, 'properties', 'namespaceLabels', 'somaagenthub_io_phase'), ''),
             transform(namespace, {{phase_namespaces}}, {{phase_names}}, '')) AS phase,
    coalesce(nullIf(JSONExtractString(allocation, 'properties', 'labels', 'somaagenthub_io_tenant'), ''),
             JSONExtractString(allocation, 'properties', 'namespaceLabels', 'somaagenthub_io_tenant')) AS tenant,
    JSONExtractFloat(allocation, 'cpuCost') + JSONExtractFloat(allocation, 'cpuCostAdjustment') AS cpu_cost,
    JSONExtractFloat(allocation, 'gpuCost') + JSONExtractFloat(allocation, 'gpuCostAdjustment') AS gpu_cost,
    JSONExtractFloat(allocation, 'ramCost') + JSONExtractFloat(allocation, 'ramCostAdjustment') AS ram_cost,
    JSONExtractFloat(allocation, 'pvCost') + JSONExtractFloat(allocation, 'pvCostAdjustment') AS pv_cost,
    JSONExtractFloat(allocation, 'networkCost') + JSONExtractFloat(allocation, 'networkCostAdjustment') AS network_cost,
    JSONExtractFloat(allocation, 'loadBalancerCost') + JSONExtractFloat(allocation, 'loadBalancerCostAdjustment') AS load_balancer_cost,
    JSONExtractFloat(allocation, 'sharedCost') AS shared_cost,
    JSONExtractFloat(allocation, 'externalCost') AS external_cost,
    JSONExtractFloat(allocation, 'totalCost') AS total_cost,
    JSONExtractFloat(allocation, 'totalEfficiency') AS total_efficiency,
    now64(3, 'UTC') AS ingested_at
FROM
(
    SELECT kv.1 AS name, kv.2 AS allocation
    FROM {{source}}
    ARRAY JOIN JSONExtractArrayRaw(json, 'data') AS step
    ARRAY JOIN JSONExtractKeysAndValuesRaw(step) AS kv
    WHERE JSONExtractInt(json, 'code') = 200
)
WHERE JSONHas(allocation, 'window')
