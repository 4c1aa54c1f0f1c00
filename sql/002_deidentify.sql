-- retentiond schema version 2: helpers for de-identification methods that
-- plain SQL cannot express safely.

-- truncate_ip on a text column: IPv4 to /24, IPv6 to /48. Text that is not
-- an address cannot be truncated; it is redacted rather than kept, because
-- keeping it would keep whatever identifying value it holds. Idempotent, so
-- a row whose value equals truncate_ip_text(value) is done.
CREATE FUNCTION truncate_ip_text(v text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog
AS $$
DECLARE
    ip inet;
BEGIN
    BEGIN
        ip := v::inet;
    EXCEPTION WHEN invalid_text_representation THEN
        RETURN '[redacted]';
    END;
    IF family(ip) = 4 THEN
        ip := network(set_masklen(ip, least(masklen(ip), 24)));
    ELSE
        ip := network(set_masklen(ip, least(masklen(ip), 48)));
    END IF;
    RETURN ip::text;
END
$$;

COMMENT ON FUNCTION truncate_ip_text(text) IS
    'retentiond truncate_ip for text columns: IPv4 /24, IPv6 /48, anything else [redacted]';
