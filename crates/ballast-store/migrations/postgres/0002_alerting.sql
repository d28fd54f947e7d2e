-- Ballast operations store, PostgreSQL: the alerting side (issue 12): the current state of every
-- alert, silences, and per-minute rollups of every monitored series.
-- Times are milliseconds since the Unix epoch; label sets, annotations and matchers are JSON
-- text, so new labels need no migration.

-- One row per alert (a rule on one series, or one received alert): its current state only.
-- The id is the fingerprint of its labels, the same after a restart and on every instance.
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('inactive', 'pending', 'firing', 'resolved')),
    severity TEXT CHECK (severity IN ('warning', 'critical')),
    source TEXT NOT NULL,
    value DOUBLE PRECISION,
    threshold DOUBLE PRECISION,
    since_unix_ms BIGINT NOT NULL,
    updated_unix_ms BIGINT NOT NULL,
    ack_by TEXT,
    ack_comment TEXT,
    ack_unix_ms BIGINT
);
CREATE INDEX alerts_state ON alerts (state, since_unix_ms);

-- Identity: a silence id is never reused, so `expire ID` cannot hit a later silence.
CREATE TABLE silences (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_unix_ms BIGINT NOT NULL,
    ends_unix_ms BIGINT NOT NULL,
    author TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_unix_ms BIGINT NOT NULL
);
CREATE INDEX silences_ends ON silences (ends_unix_ms);

-- One row per (monitor, value, series, minute). `fingerprint` names the label set (the key);
-- `labels` holds the set itself. The id only lets retention delete in small batches.
CREATE TABLE metric_rollups (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    monitor TEXT NOT NULL,
    value_name TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    labels TEXT NOT NULL,
    minute_unix_ms BIGINT NOT NULL,
    min_value DOUBLE PRECISION NOT NULL,
    avg_value DOUBLE PRECISION NOT NULL,
    max_value DOUBLE PRECISION NOT NULL,
    p95_value DOUBLE PRECISION NOT NULL,
    sample_count BIGINT NOT NULL,
    UNIQUE (monitor, value_name, fingerprint, minute_unix_ms)
);
CREATE INDEX metric_rollups_range ON metric_rollups (monitor, value_name, minute_unix_ms);
CREATE INDEX metric_rollups_minute ON metric_rollups (minute_unix_ms);
