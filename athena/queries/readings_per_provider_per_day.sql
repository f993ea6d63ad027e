-- How many readings each provider delivered per day, between two days (inclusive).
-- Parameters: first day, last day (yyyy-mm-dd).
SELECT day, provider, count(*) AS readings
FROM readings
WHERE day BETWEEN ? AND ?
GROUP BY day, provider
ORDER BY day, provider
