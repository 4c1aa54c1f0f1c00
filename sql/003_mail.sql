-- retentiond schema version 3: erasure request reminders by mail.
--
-- Staff are mailed when an erasure request is 7 days from its due date and
-- when it is overdue (SPEC §5), once each, not every cycle. These columns
-- record that the reminder was queued; they are set in the same
-- transaction that puts the mail into the outbox.

ALTER TABLE erasure_requests
    ADD COLUMN due_soon_mailed_at timestamptz,
    ADD COLUMN overdue_mailed_at  timestamptz;

COMMENT ON COLUMN erasure_requests.due_soon_mailed_at IS
    'When staff were mailed that this request is due within 7 days (NULL: not yet).';
COMMENT ON COLUMN erasure_requests.overdue_mailed_at IS
    'When staff were mailed that this request is overdue (NULL: not yet).';
