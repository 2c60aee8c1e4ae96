-- PostgreSQL restore drill, step 3, on the restored cluster (database postgres): recovery ended
-- and the cluster was promoted, it stopped exactly at the drill's restore point (the marker is
-- there, nothing marked later is), and the five owner databases exist. Every column must be t.
-- Run with: psql -v ON_ERROR_STOP=1 -v drill=<drill name> -f postgres_verify.sql
SELECT NOT pg_is_in_recovery() AS promoted,
       EXISTS (SELECT 1 FROM public.restore_drill WHERE name = :'drill') AS marker_present,
       NOT EXISTS (
           SELECT 1 FROM public.restore_drill
           WHERE marked_at > (SELECT marked_at FROM public.restore_drill WHERE name = :'drill')
       ) AS stopped_at_restore_point,
       (SELECT count(*) FROM pg_database WHERE datname IN ('openfga', 'identity', 'orchestrator', 'memory', 'grafana')) = 5 AS owner_databases;
