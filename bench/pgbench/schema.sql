-- The table the raw PostgreSQL figures are measured on: a copy of ticketd's own `tickets` table (same columns,
-- defaults, generated search column and indexes), in a database ticketd has migrated.
DROP TABLE IF EXISTS raw_tickets;
CREATE TABLE raw_tickets (LIKE tickets INCLUDING ALL);
INSERT INTO raw_tickets (subject, content, pipeline_id, stage_id, priority, tags, create_time, update_time)
SELECT 'raw seed ' || n, 'load test ticket', 1, 1, 'medium', '["bench"]', now(), now()
FROM generate_series(1, 1000) AS n;
