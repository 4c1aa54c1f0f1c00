-- retentiond schema version 4: subjects' right of access (SPEC §8).
--
-- access_requests mirrors erasure_requests: due one calendar month after it
-- was received, and staff are mailed once when it is 7 days from its due
-- date and once when it is overdue. An export is an audit action
-- ("access_export") in the hash chain, so the list of allowed actions
-- grows; existing rows all satisfy the new check.

ALTER TABLE actions DROP CONSTRAINT actions_action_check;
ALTER TABLE actions ADD CONSTRAINT actions_action_check
    CHECK (action IN ('delete', 'deidentify', 'drop_partition',
                      'detach_partition', 'erasure', 'access_export'));

CREATE TABLE access_requests (
    id                 bigserial PRIMARY KEY,
    subject            text NOT NULL,
    subject_id         text NOT NULL,
    reason             text,
    requested_at       timestamptz NOT NULL DEFAULT now(),
    due_at             timestamptz NOT NULL,
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'done', 'failed')),
    completed_at       timestamptz,
    detail             jsonb,
    due_soon_mailed_at timestamptz,
    overdue_mailed_at  timestamptz
);
CREATE INDEX access_requests_subject_idx ON access_requests (subject, subject_id);
CREATE INDEX access_requests_open_idx ON access_requests (due_at)
    WHERE status <> 'done';
COMMENT ON TABLE access_requests IS
    'Right-of-access requests (GDPR art. 15 and 20): due one month after they were received; detail records the export files, their sha256 and sizes and the rows per table (never the values).';
COMMENT ON COLUMN access_requests.due_soon_mailed_at IS
    'When staff were mailed that this request is due within 7 days (NULL: not yet).';
COMMENT ON COLUMN access_requests.overdue_mailed_at IS
    'When staff were mailed that this request is overdue (NULL: not yet).';

-- The same rule as erasure requests: requested_at + 1 month.
CREATE TRIGGER access_requests_due_at
    BEFORE INSERT ON access_requests
    FOR EACH ROW EXECUTE FUNCTION erasure_requests_due_at();
