-- PostgreSQL restore drill: every user table of the current database with its row count and an
-- order-independent checksum of its rows. Run in each owner database on the live cluster right
-- after step 1, and again on the restored cluster: on tables nobody wrote to in between, the
-- lines must be equal (the drill's `diff`).
SELECT n.nspname AS schema_name,
       c.relname AS table_name,
       (xpath('/row/n/text()', query_to_xml(
            format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint AS row_count,
       (xpath('/row/h/text()', query_to_xml(
            format('SELECT md5(coalesce(string_agg(md5(t::text), '''' ORDER BY md5(t::text)), '''')) AS h FROM %I.%I t',
                   n.nspname, c.relname), false, true, '')))[1]::text AS checksum
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
ORDER BY 1, 2;
