-- retentiond schema, version 1: runs, the hash-chained audit trail, legal
-- holds, erasure requests and the mail outbox.
--
-- `retentiond init-db` applies this file in one transaction after
--     SET LOCAL search_path = "<database.schema>", pg_catalog, pg_temp
-- so every name below is unqualified and lands in the configured schema.
-- To apply it by hand, create the schema and set search_path the same way.
--
-- Functions pin that search_path (SET search_path FROM CURRENT), so they
-- work whatever the caller's search_path is; retentiond itself runs with
-- search_path = pg_catalog, pg_temp. Requires PostgreSQL 11 or later
-- (sha256(), EXECUTE FUNCTION).

CREATE TABLE schema_version (
    version     int PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    description text
);
COMMENT ON TABLE schema_version IS
    'retentiond schema versions applied by "retentiond init-db", one row per sql/NNN_*.sql file.';

CREATE TABLE runs (
    id            bigserial PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    host          text NOT NULL,
    command       text NOT NULL,
    status        text NOT NULL
                  CHECK (status IN ('running', 'ok', 'partial', 'failed', 'interrupted')),
    config_sha256 text,
    error         text,
    pid           int,
    summary       jsonb
);
COMMENT ON TABLE runs IS
    'One row per retentiond cycle (run, daemon) or dry run (plan): when, where, with which configuration (config_sha256) and how it ended.';

-- The audit trail. Ids are not taken from a column default: the chain
-- trigger assigns them while it holds the audit_head row lock, so id order
-- is chain order even when two transactions insert at once.
CREATE TABLE actions (
    id          bigint PRIMARY KEY,
    run_id      bigint NOT NULL REFERENCES runs,
    rule        text NOT NULL,
    target      text NOT NULL,
    action      text NOT NULL
                CHECK (action IN ('delete', 'deidentify', 'drop_partition',
                                  'detach_partition', 'erasure')),
    cutoff      timestamptz,
    rows        bigint NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    detail      jsonb,
    prev_hash   text NOT NULL,
    hash        text NOT NULL
);
CREATE SEQUENCE actions_id_seq OWNED BY actions.id;
CREATE INDEX actions_run_id_idx ON actions (run_id);
CREATE INDEX actions_rule_finished_at_idx ON actions (rule, finished_at);
COMMENT ON TABLE actions IS
    'Audit trail: one row per committed batch or partition change, written in the same transaction as the change. Append-only. hash = sha256(prev_hash || action_canonical(row)), prev_hash = the hash of the row before (64 zeros for the first): "retentiond verify" recomputes the chain.';
COMMENT ON COLUMN actions.rows IS 'Rows deleted or de-identified by this batch, or held by the dropped/detached partition.';
COMMENT ON COLUMN actions.cutoff IS 'Rows older than this were in scope (NULL for erasure requests, which ignore age).';

CREATE TABLE audit_head (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_id bigint,
    hash    text NOT NULL
);
INSERT INTO audit_head (id, last_id, hash)
    VALUES (true, NULL, repeat('0', 64));
COMMENT ON TABLE audit_head IS
    'The newest link of the audit chain (one row): the id and hash of the last action. "retentiond verify" compares it with the last row of actions, which finds deleted newest rows.';

CREATE TABLE legal_holds (
    id          bigserial PRIMARY KEY,
    subject     text NOT NULL,
    subject_id  text NOT NULL,
    reason      text NOT NULL CHECK (reason <> ''),
    placed_by   text NOT NULL,
    placed_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    released_at timestamptz,
    released_by text
);
CREATE INDEX legal_holds_active_idx ON legal_holds (subject, subject_id)
    WHERE released_at IS NULL;
COMMENT ON TABLE legal_holds IS
    'Legal holds: while a hold is neither released nor expired, no rule and no erasure request touches rows of that subject (e.g. customer 42).';

CREATE TABLE erasure_requests (
    id           bigserial PRIMARY KEY,
    subject      text NOT NULL,
    subject_id   text NOT NULL,
    reason       text,
    requested_at timestamptz NOT NULL DEFAULT now(),
    due_at       timestamptz NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'done', 'partial', 'held')),
    completed_at timestamptz,
    detail       jsonb
);
CREATE INDEX erasure_requests_subject_idx ON erasure_requests (subject, subject_id);
CREATE INDEX erasure_requests_open_idx ON erasure_requests (due_at)
    WHERE status <> 'done';
COMMENT ON TABLE erasure_requests IS
    'Right-to-erasure requests (GDPR art. 17): due one month after they were received; detail records what was erased and what was kept under which policy.';

CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    subject         text NOT NULL,
    body            text NOT NULL,
    html_body       text,
    attempts        int NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz,
    sent_at         timestamptz
);
CREATE INDEX outbox_unsent_idx ON outbox (next_attempt_at) WHERE sent_at IS NULL;
COMMENT ON TABLE outbox IS
    'Mail to staff, kept until sent: each cycle retries what is unsent.';

-- --- erasure_requests.due_at ------------------------------------------------

-- A column DEFAULT cannot refer to another column.
CREATE FUNCTION erasure_requests_due_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    IF NEW.due_at IS NULL THEN
        NEW.due_at := NEW.requested_at + interval '1 month';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER erasure_requests_due_at
    BEFORE INSERT ON erasure_requests
    FOR EACH ROW EXECUTE FUNCTION erasure_requests_due_at();

-- --- the audit hash chain ---------------------------------------------------

-- The text an action's hash covers. Timestamps are written in UTC with a
-- fixed format, so the result depends on neither TimeZone nor DateStyle.
-- src/audit.c recomputes the chain with its own copy of this expression
-- (AUDIT_CANONICAL_SQL), so that replacing this function cannot hide a
-- change; keep the two identical.
CREATE FUNCTION action_canonical(a actions) RETURNS text
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT json_build_array(
        a.id, a.run_id, a.rule, a.target, a.action,
        to_char(a.cutoff AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        a.rows,
        to_char(a.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        to_char(a.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        a.detail)::text
$$;
COMMENT ON FUNCTION action_canonical(actions) IS
    'The canonical text of an audit row that its hash covers.';

-- Locking the head row serializes every writer of the audit trail until it
-- commits; the id is drawn under that lock so ids follow the chain.
CREATE FUNCTION actions_chain() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    head_hash text;
BEGIN
    SELECT h.hash INTO head_hash FROM audit_head h WHERE h.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the audit trail head row is missing'
            USING HINT = 'Run "retentiond verify"; the audit trail has been tampered with.';
    END IF;
    NEW.id := nextval('actions_id_seq');
    NEW.prev_hash := head_hash;
    NEW.hash := encode(sha256(convert_to(NEW.prev_hash || action_canonical(NEW), 'UTF8')), 'hex');
    UPDATE audit_head SET last_id = NEW.id, hash = NEW.hash WHERE id;
    RETURN NEW;
END
$$;

CREATE TRIGGER actions_chain
    BEFORE INSERT ON actions
    FOR EACH ROW EXECUTE FUNCTION actions_chain();

CREATE FUNCTION audit_append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    -- audit_head moves only from inside the chain trigger on actions.
    IF TG_TABLE_NAME = 'audit_head' AND TG_OP = 'UPDATE' AND pg_trigger_depth() > 1 THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only'
        USING DETAIL = format('%s on %I.%I is not allowed.', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME);
END
$$;

CREATE TRIGGER actions_append_only
    BEFORE UPDATE OR DELETE ON actions
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER actions_no_truncate
    BEFORE TRUNCATE ON actions
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_head_guard
    BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_head_no_truncate
    BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

INSERT INTO schema_version (version, description)
    VALUES (1, 'runs, actions (hash chain), legal holds, erasure requests, outbox');
