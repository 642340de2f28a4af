-- Windows only move forward: each stored window keeps its end, and its
-- counters restart only once an admission's window begins at or after it.
ALTER TABLE api_keys ADD COLUMN minute_end BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN day_end BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN month_end BIGINT NOT NULL DEFAULT 0;
-- Minutes are 60 seconds. A day or month's end depends on APP_TZ, unknown
-- here: an end one second past the start keeps an open window as before (an
-- admission in the same window, with the same start, stretches it to its
-- real end) and lets any later window replace it.
UPDATE api_keys SET minute_end = minute_start + 60, day_end = day_start + 1, month_end = month_start + 1;

-- Whether a reservation's request counts in the daily, monthly and lifetime
-- request counters (1), or only in the per-minute one and the concurrency
-- slot (0), so that settlement gives back exactly what was counted.
ALTER TABLE reservations ADD COLUMN quota_requests BIGINT NOT NULL DEFAULT 1;
