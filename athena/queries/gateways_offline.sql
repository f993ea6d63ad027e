-- Gateways that reported themselves offline between two instants, with the first and last
-- such report and how many there were.
-- Parameters: first day, last day (yyyy-mm-dd, for partition pruning),
-- range start (inclusive) and end (exclusive) as ISO 8601 timestamps.
SELECT
    provider,
    gateway_id,
    min(reported_at) AS first_offline_at,
    max(reported_at) AS last_offline_at,
    count(*) AS offline_reports
FROM gateway_status
WHERE online = false
    AND day BETWEEN ? AND ?
    AND reported_at >= from_iso8601_timestamp(?)
    AND reported_at < from_iso8601_timestamp(?)
GROUP BY provider, gateway_id
ORDER BY provider, gateway_id
