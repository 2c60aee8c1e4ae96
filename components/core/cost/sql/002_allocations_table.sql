-- Cost, step 2: one row per (hour, cluster, namespace, tenant) as Kubecost's allocation API reports it
-- (GET /allocation?window=<hour>&aggregate=namespace,label:somaagenthub_io_tenant&accumulate=true).
-- * ReplacingMergeTree(ingested_at): the ingest CronJob may copy the same hour twice (a retried run,
--   a late Kubecost reconciliation); the newest copy wins. Queries read with FINAL.
-- * phase and tenant come from the platform's labels (components/kit/labels.py), as Prometheus
--   spells them (somaagenthub_io_phase, somaagenthub_io_tenant); empty when the workload has none.
-- * Costs are the API's cumulative costs for the window, in the currency Kubecost is configured with.
CREATE TABLE IF NOT EXISTS cost.allocations {{on_cluster}}
(
    window_start       DateTime('UTC'),
    window_end         DateTime('UTC'),
    cluster            LowCardinality(String),
    namespace          LowCardinality(String),
    phase              LowCardinality(String),
    tenant             LowCardinality(String),
    cpu_cost           Float64,
    gpu_cost           Float64,
    ram_cost           Float64,
    pv_cost            Float64,
    network_cost       Float64,
    load_balancer_cost Float64,
    shared_cost        Float64,
    external_cost      Float64,
    total_cost         Float64,
    total_efficiency   Float64,
    ingested_at        DateTime64(3, 'UTC')
)
ENGINE = {{replacing_engine}}
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, cluster, namespace, tenant)
TTL window_start + toIntervalDay({{retention_days}})
