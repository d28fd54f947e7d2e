-- Ballast operations store, PostgreSQL: events, config versions, change markers, instances.
-- Times are milliseconds since the Unix epoch (BIGINT), as on SQLite, so both backends return
-- the same values. Identity columns never reuse ids, so "after id" cursors stay valid.

CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at_unix_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX events_at ON events (at_unix_ms);
CREATE INDEX events_kind ON events (kind, id);

CREATE TABLE config_versions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    text TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    at_unix_ms BIGINT NOT NULL,
    host TEXT NOT NULL,
    instance TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'refused')),
    error TEXT
);
CREATE INDEX config_versions_at ON config_versions (at_unix_ms);
CREATE INDEX config_versions_outcome ON config_versions (outcome, id);

CREATE TABLE changes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    service TEXT,
    version TEXT,
    summary TEXT NOT NULL,
    author TEXT,
    url TEXT,
    at_unix_ms BIGINT NOT NULL
);
CREATE INDEX changes_at ON changes (at_unix_ms);

CREATE TABLE instances (
    instance TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    config_sha256 TEXT NOT NULL,
    first_seen_unix_ms BIGINT NOT NULL,
    last_seen_unix_ms BIGINT NOT NULL
);
