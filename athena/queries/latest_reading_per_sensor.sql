-- The latest reading of every sensor, metric and channel measured between two days (inclusive).
-- Parameters: first day, last day (yyyy-mm-dd).
SELECT
    provider,
    sensor_id,
    metric,
    channel,
    max(measured_at) AS measured_at,
    max_by(value, measured_at) AS value,
    max_by(text_value, measured_at) AS text_value,
    max_by(unit, measured_at) AS unit,
    max_by(status, measured_at) AS status
FROM readings
WHERE day BETWEEN ? AND ?
GROUP BY provider, sensor_id, metric, channel
ORDER BY provider, sensor_id, metric, channel
