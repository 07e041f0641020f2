-- Security review (docs/security.md): an SSO identity is the pair (issuer, subject) stored on
-- the user it created or an administrator linked; sign-ins resolve only through it.
ALTER TABLE users ADD COLUMN sso_issuer TEXT;
ALTER TABLE users ADD COLUMN sso_subject TEXT;
CREATE UNIQUE INDEX users_sso ON users(sso_issuer, sso_subject);
