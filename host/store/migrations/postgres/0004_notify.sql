-- Push invalidation (see host/store/src/changes.rs): every write that changes who may do
-- what notifies the other servers in its own transaction (delivered on commit; identical
-- notifications of one transaction are delivered once). Row-level triggers with WHEN
-- clauses, so writes that change no permission (a login's last_login_at and failure
-- counters, a key's last_used_at, a new key, which no server can have cached) notify
-- nobody.
CREATE FUNCTION portcullis_notify_auth() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('portcullis_auth', TG_TABLE_NAME);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER accounts_notify_write AFTER INSERT OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION portcullis_notify_auth();
CREATE TRIGGER accounts_notify_update AFTER UPDATE ON accounts
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION portcullis_notify_auth();

-- A new user matters: an outside decision may have cached "unknown subject".
CREATE TRIGGER users_notify_write AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION portcullis_notify_auth();
CREATE TRIGGER users_notify_update AFTER UPDATE ON users
    FOR EACH ROW WHEN (
        OLD.account IS DISTINCT FROM NEW.account
        OR OLD.roles IS DISTINCT FROM NEW.roles
        OR OLD.attributes IS DISTINCT FROM NEW.attributes
        OR OLD.password_hash IS DISTINCT FROM NEW.password_hash
        OR OLD.must_change_password IS DISTINCT FROM NEW.must_change_password
        OR OLD.sso_issuer IS DISTINCT FROM NEW.sso_issuer
        OR OLD.sso_subject IS DISTINCT FROM NEW.sso_subject
        OR OLD.email IS DISTINCT FROM NEW.email
    )
    EXECUTE FUNCTION portcullis_notify_auth();

CREATE TRIGGER api_keys_notify_delete AFTER DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION portcullis_notify_auth();
CREATE TRIGGER api_keys_notify_update AFTER UPDATE ON api_keys
    FOR EACH ROW WHEN (
        OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
        OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
        OR OLD.username IS DISTINCT FROM NEW.username
    )
    EXECUTE FUNCTION portcullis_notify_auth();

CREATE TRIGGER authorizer_state_notify AFTER INSERT OR UPDATE ON authorizer_state
    FOR EACH ROW EXECUTE FUNCTION portcullis_notify_auth();
