-- Push invalidation (see host/store/src/changes.rs): every write that changes who may do
-- what notifies the other servers in its own transaction (delivered on commit).
CREATE FUNCTION portcullis_notify_auth() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('portcullis_auth', TG_TABLE_NAME);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER accounts_notify AFTER INSERT OR UPDATE OR DELETE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_notify_auth();
-- Not on logins (last_login_at, failed_logins, locked_until): they change no permission.
CREATE TRIGGER users_notify AFTER INSERT OR DELETE
    OR UPDATE OF account, roles, attributes, password_hash, must_change_password, sso_issuer, sso_subject
    ON users FOR EACH STATEMENT EXECUTE FUNCTION portcullis_notify_auth();
-- Not on last_used_at (written at most once a minute per key in use).
CREATE TRIGGER api_keys_notify AFTER INSERT OR DELETE OR UPDATE OF revoked_at, expires_at, username
    ON api_keys FOR EACH STATEMENT EXECUTE FUNCTION portcullis_notify_auth();
CREATE TRIGGER authorizer_state_notify AFTER INSERT OR UPDATE ON authorizer_state
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_notify_auth();
