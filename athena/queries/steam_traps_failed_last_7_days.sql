-- Steam traps whose state changed to a failure (any state but Good) in the last 7 days.
-- The previous state is looked up 30 days further back, so a trap reporting the same
-- failure again is not listed twice.
WITH states AS (
    SELECT
        provider,
        sensor_id,
        measured_at,
        text_value AS state,
        lag(text_value) OVER (
            PARTITION BY provider, sensor_id ORDER BY measured_at
        ) AS previous_state
    FROM readings
    WHERE metric = 'trap_state'
        AND day >= date_format(current_date - INTERVAL '37' DAY, '%Y-%m-%d')
)
SELECT provider, sensor_id, measured_at AS changed_at, previous_state, state
FROM states
WHERE measured_at >= current_timestamp - INTERVAL '7' DAY
    AND state <> 'Good'
    AND (previous_state IS NULL OR previous_state <> state)
ORDER BY changed_at, sensor_id
