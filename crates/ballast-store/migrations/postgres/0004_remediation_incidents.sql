-- Ballast operations store, PostgreSQL: remediation runs and incidents (issue 14). Both must survive a
-- gateway restart: the remediation guards (budgets, cooldowns, failure counts) are rebuilt by
-- replaying the recorded runs, and open incidents carry on where they were.
-- Times are milliseconds since the Unix epoch; steps and incident bodies are JSON text.
--
-- One row per remediation run, refused runs included ("why didn't it restart?"). result is
-- ok | failed | refused; reason is the failure's or refusal's reason, refused_kind the refusal's
-- kind (cooldown, budget, blocked, injection).
CREATE TABLE remediation_runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule TEXT NOT NULL,
    target TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    dry_run BOOLEAN NOT NULL,
    started_unix_ms BIGINT NOT NULL,
    ended_unix_ms BIGINT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('ok', 'failed', 'refused')),
    reason TEXT,
    refused_kind TEXT,
    steps_json TEXT NOT NULL
);
-- The run log and pruning: by age.
CREATE INDEX remediation_runs_started ON remediation_runs (started_unix_ms);
-- The replay after a restart: one rule's runs on one target.
CREATE INDEX remediation_runs_rule_target ON remediation_runs (rule, target, started_unix_ms);

-- One row per incident. body_json is the whole incident as the incident crate writes it (it
-- owns the shape); the other columns are copies the caller passes in so that lists, filters
-- and pruning need not read the JSON. closed_unix_ms is set once the incident is closed.
CREATE TABLE incidents (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_unix_ms BIGINT NOT NULL,
    closed_unix_ms BIGINT,
    updated_unix_ms BIGINT NOT NULL,
    body_json TEXT NOT NULL
);
-- Open incidents and the status filter.
CREATE INDEX incidents_status ON incidents (status);
-- Lists, newest first.
CREATE INDEX incidents_opened ON incidents (opened_unix_ms);
