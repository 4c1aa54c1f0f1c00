-- retentiond schema version 5: restore detection (SPEC §11).
--
-- When the database's audit chain lacks the head that the ledger (in
-- state_directory, outside the database) last recorded, the database was
-- restored from a backup or audit rows were removed. retentiond records
-- that in the chain as a `restore_detected` action, in the transaction
-- that re-files the ledger's erasure requests the database lacks.
--
-- The action list below is the whole of it: the v1 actions, access_export
-- (sql/004_access.sql) and restore_detected. Any CHECK on actions.action
-- is replaced, whatever an earlier version named it, so this file is
-- right whether or not 004 ran first.

DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT con.conname
        FROM pg_catalog.pg_constraint con
        WHERE con.conrelid = 'actions'::regclass
          AND con.contype = 'c'
          AND pg_catalog.pg_get_constraintdef(con.oid) LIKE '%action%'
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE actions DROP CONSTRAINT %I', c.conname);
    END LOOP;
END
$$;

ALTER TABLE actions ADD CONSTRAINT actions_action_check
    CHECK (action IN ('delete', 'deidentify', 'drop_partition',
                      'detach_partition', 'erasure', 'access_export',
                      'restore_detected'));

COMMENT ON COLUMN actions.action IS
    'delete, deidentify, drop_partition, detach_partition, erasure, access_export, or restore_detected (the chain lacked the head that the ledger recorded: the database was restored from a backup; detail lists the re-filed erasure requests).';
