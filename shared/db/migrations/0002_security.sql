-- Sessions that can be revoked (docs/security.md). Every access token carries the user's
-- token_version; bumping it (log out everywhere, password change) makes every older token invalid.
ALTER TABLE users
    ADD COLUMN token_version integer NOT NULL DEFAULT 1 CHECK (token_version >= 1),
    ADD COLUMN password_changed_at timestamptz;
