-- PostgreSQL restore drill, step 1, on the live primary (database postgres, as its superuser through
-- `kubectl cnpg psql`): a marker row the restored cluster must hold, then a named restore point
-- right after it, and a WAL switch so the segment holding both is archived now.
-- Run with: psql -v ON_ERROR_STOP=1 -v drill=<drill name> -f postgres_mark.sql
CREATE TABLE IF NOT EXISTS public.restore_drill (
    name      text PRIMARY KEY,
    marked_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO public.restore_drill (name) VALUES (:'drill');
SELECT pg_create_restore_point(:'drill') AS restore_point_lsn;
SELECT pg_switch_wal() AS switched_at_lsn;
