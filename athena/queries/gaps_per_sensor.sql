-- Periods missing from each series (sensor, metric, channel) between two days: consecutive
-- readings further apart than twice the measurement period (60 s when the provider states none).
-- Parameters: first day, last day (yyyy-mm-dd).
WITH ordered AS (
    SELECT
        provider,
        sensor_id,
        metric,
        channel,
        measured_at,
        coalesce(period_s, 60) AS period_s,
        lag(measured_at) OVER (
            PARTITION BY provider, sensor_id, metric, channel ORDER BY measured_at
        ) AS previous_at
    FROM readings
    WHERE day BETWEEN ? AND ?
)
SELECT
    provider,
    sensor_id,
    metric,
    channel,
    previous_at AS gap_after,
    measured_at AS gap_until,
    date_diff('second', previous_at, measured_at) AS gap_seconds
FROM ordered
WHERE previous_at IS NOT NULL
    AND date_diff('second', previous_at, measured_at) > 2 * period_s
ORDER BY provider, sensor_id, metric, channel, gap_after
