-- Cost anomaly (alert CostAnomaly): a namespace whose last ingested hour cost more than twice its
-- hourly average over the week before AND more than three standard deviations above it.
-- Needs a day of history for the namespace, so a new namespace does not page; one row per anomalous
-- namespace (Grafana makes one alert instance per row, labelled by namespace, phase and tenant), whose
-- spike_ratio (> 2 by construction) is the verdict the rule's threshold compares with 0. Relative to the
-- newest ingested hour, not now(): a late ingest still compares like with like; an ingest that stopped is
-- what the CronJob's own failure shows (kube-state-metrics), not a cost anomaly.
WITH
    hourly AS
    (
        SELECT namespace, any(phase) AS phase, any(tenant) AS tenant, window_start, sum(total_cost) AS cost
        FROM cost.allocations FINAL
        WHERE window_start >= (SELECT max(window_start) FROM cost.allocations) - INTERVAL 7 DAY
          AND namespace NOT IN ('__idle__', '__unmounted__')
        GROUP BY namespace, window_start
    ),
    (SELECT max(window_start) FROM hourly) AS latest_hour
SELECT
    latest.namespace AS namespace,
    latest.phase AS phase,
    latest.tenant AS tenant,
    latest.cost AS last_hour_cost,
    base.avg_cost AS baseline_hourly_cost,
    latest.cost / greatest(base.avg_cost, 1e-9) AS spike_ratio
FROM (SELECT namespace, phase, tenant, cost FROM hourly WHERE window_start = latest_hour) AS latest
INNER JOIN
(
    SELECT namespace, avg(cost) AS avg_cost, stddevPop(cost) AS sd, count() AS hours
    FROM hourly
    WHERE window_start < latest_hour
    GROUP BY namespace
) AS base ON latest.namespace = base.namespace
WHERE base.hours >= 24
  AND latest.cost > 2 * base.avg_cost
  AND latest.cost > base.avg_cost + 3 * base.sd
ORDER BY spike_ratio DESC
