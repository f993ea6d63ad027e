-- One sensor's readings over a time range, oldest first.
-- Parameters: sensor id, first day, last day (yyyy-mm-dd, for partition pruning),
-- range start (inclusive) and end (exclusive) as ISO 8601 timestamps.
SELECT
    measured_at,
    metric,
    channel,
    value,
    text_value,
    unit,
    status,
    gateway_id
FROM readings
WHERE sensor_id = ?
    AND day BETWEEN ? AND ?
    AND measured_at >= from_iso8601_timestamp(?)
    AND measured_at < from_iso8601_timestamp(?)
ORDER BY measured_at, metric, channel
