"""SQL for users as sessions see them: the row a token is checked against, and what revokes tokens."""

from __future__ import annotations

#: What an access token is checked against: the user exists, in this company, with this version.
SESSION_STATE = """
SELECT company_id, role, token_version FROM users WHERE id = %(id)s
"""

#: Log out everywhere: every token issued before is now of an older version.
REVOKE_TOKENS = """
UPDATE users SET token_version = token_version + 1
WHERE id = %(id)s AND company_id = %(company_id)s
RETURNING token_version
"""

PASSWORD_HASH = """
SELECT password_hash FROM users WHERE id = %(id)s AND company_id = %(company_id)s
"""

#: Guarded by the hash that was verified: a concurrent change makes this update nothing (409).
CHANGE_PASSWORD = """
UPDATE users SET password_hash = %(new_hash)s, token_version = token_version + 1, password_changed_at = now()
WHERE id = %(id)s AND company_id = %(company_id)s AND password_hash = %(old_hash)s
RETURNING token_version
"""
