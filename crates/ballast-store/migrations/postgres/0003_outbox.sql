-- Ballast operations store, PostgreSQL: the notification outbox (issue 13). A notification is a row
-- here before any receiver sees it, so it survives a restart and a receiver's outage, and the
-- same rows are the notification log (GET /api/v1/notifications).
-- Times are milliseconds since the Unix epoch; the message is JSON text.
--
-- A row's states: pending -> delivered | failed | expired (all three final). Only pending rows
-- with not_before_unix_ms <= now < expires_unix_ms are due.
-- dedup_key is unique: enqueuing the same notification twice (a flush replayed after a restart)
-- keeps the first row, so it is delivered once.
CREATE TABLE notifications (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    dedup_key TEXT NOT NULL UNIQUE,
    created_unix_ms BIGINT NOT NULL,
    not_before_unix_ms BIGINT NOT NULL,
    expires_unix_ms BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'expired')),
    attempts BIGINT NOT NULL DEFAULT 0,
    last_attempt_unix_ms BIGINT,
    last_error TEXT,
    delivered_unix_ms BIGINT,
    answer TEXT
);
-- The due query: pending rows by when they may go.
CREATE INDEX notifications_due ON notifications (state, not_before_unix_ms);
-- The log and pruning: by age.
CREATE INDEX notifications_created ON notifications (created_unix_ms);
