"""SQL of the durable backend, one named constant per query. Tables are unqualified: every
connection runs with `search_path` set to the backend's schema."""

from __future__ import annotations

INSTANCE_COLUMNS = """instance_id, execution_id, name, version, status, input, custom_status,
    parent_instance_id, parent_execution_id, parent_task_id, next_event_id, history_len,
    open_ids, retries, actions, lease_token, episode_attempts, last_error"""

#: Lease up to N instances that have a due message and no live lease (a suspended instance
#: only for control messages). SKIP LOCKED keeps concurrent claimers off each other's rows.
#: Each claim counts an attempt (reset by the episode's commit), so an episode that keeps
#: failing, or keeps killing its worker, is seen; the last column is the database's clock.
CLAIM_EPISODES = f"""
WITH ready AS (
    SELECT s.instance_id FROM instances s
    WHERE s.instance_id IN (SELECT b.instance_id FROM inbox b WHERE b.visible_at <= now())
      AND (s.lease_expires IS NULL OR s.lease_expires < now())
      AND (s.status <> 'Suspended' OR EXISTS (
            SELECT 1 FROM inbox c WHERE c.instance_id = s.instance_id
              AND c.kind = 'control' AND c.visible_at <= now()))
    LIMIT %(limit)s
    FOR UPDATE OF s SKIP LOCKED
)
UPDATE instances s
SET lease_token = %(token)s, lease_expires = now() + make_interval(secs => %(lease)s),
    episode_attempts = s.episode_attempts + 1
FROM ready WHERE s.instance_id = ready.instance_id
RETURNING {", ".join("s." + c.strip() for c in INSTANCE_COLUMNS.split(","))}, now()
"""  # noqa: S608 - SQL built from this module's constants

LOAD_INBOX = """
SELECT id, instance_id, execution_id, kind, event FROM inbox
WHERE instance_id = ANY(%s) AND visible_at <= now() ORDER BY id
"""

LOAD_HISTORY = """
SELECT instance_id, event FROM history WHERE instance_id = ANY(%s) ORDER BY instance_id, seq
"""

#: The fence of an episode: nothing is written unless the claim's lease token still holds.
UPDATE_INSTANCE = """
UPDATE instances SET
    status = %(status)s, output = coalesce(%(output)s, output), custom_status = %(custom_status)s,
    execution_id = %(execution_id)s, input = %(input)s,
    next_event_id = %(next_event_id)s, history_len = %(history_len)s,
    open_ids = %(open_ids)s, retries = %(retries)s,
    actions = CASE WHEN %(reset_actions)s THEN %(new_actions)s ELSE actions || %(new_actions)s END,
    updated_at = now(), lease_token = NULL, lease_expires = NULL,
    episode_attempts = 0, last_error = NULL
WHERE instance_id = %(instance_id)s AND lease_token = %(token)s
"""

#: A failed episode gives its claim back, claimable again after `delay` seconds (the backoff
#: between attempts; `lease_expires` doubles as "not before"), and says why it failed.
RECORD_EPISODE_FAILURE = """
UPDATE instances SET last_error = %(error)s, lease_token = NULL,
    lease_expires = now() + make_interval(secs => %(delay)s)
WHERE instance_id = %(instance_id)s AND lease_token = %(token)s
"""

APPEND_HISTORY = """
INSERT INTO history (instance_id, seq, event)
SELECT %s, h.seq, h.event FROM unnest(%s::integer[], %s::text[]) AS h(seq, event)
"""

DELETE_HISTORY = "DELETE FROM history WHERE instance_id = %s"
DELETE_INBOX_IDS = "DELETE FROM inbox WHERE id = ANY(%s)"
DELETE_INBOX_ALL = "DELETE FROM inbox WHERE instance_id = %s"
DELETE_INBOX_EXECUTION = "DELETE FROM inbox WHERE instance_id = %s AND execution_id = %s"
DELETE_TIMERS = "DELETE FROM inbox WHERE instance_id = %s AND execution_id = %s AND task_id = ANY(%s)"
DELETE_ACTIVITIES = "DELETE FROM activities WHERE instance_id = %s"

#: A NULL `visible_at` means now, by the database's clock (the one that decides what is due).
INSERT_MESSAGES = """
INSERT INTO inbox (instance_id, execution_id, kind, event, visible_at, task_id)
SELECT m.instance_id, m.execution_id, m.kind, m.event, coalesce(m.visible_at, now()), m.task_id
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::integer[])
    AS m(instance_id, execution_id, kind, event, visible_at, task_id)
"""

INSERT_ACTIVITIES = """
INSERT INTO activities (instance_id, execution_id, task_id, name, input)
SELECT %s, %s, a.task_id, a.name, a.input
FROM unnest(%s::integer[], %s::text[], %s::text[]) AS a(task_id, name, input)
"""

INSERT_INSTANCE = """
INSERT INTO instances (instance_id, execution_id, name, version, status, input,
                       parent_instance_id, parent_execution_id, parent_task_id)
VALUES (%(instance_id)s, %(execution_id)s, %(name)s, %(version)s, 'Pending', %(input)s,
        %(parent_instance_id)s, %(parent_execution_id)s, %(parent_task_id)s)
ON CONFLICT (instance_id) DO NOTHING
RETURNING instance_id
"""

#: Reuse the id of a finished instance: a fresh row, as if it never existed.
REPLACE_INSTANCE = """
UPDATE instances SET execution_id = %(execution_id)s, name = %(name)s, version = %(version)s,
    status = 'Pending', input = %(input)s, output = NULL, custom_status = NULL,
    created_at = now(), updated_at = now(), parent_instance_id = %(parent_instance_id)s,
    parent_execution_id = %(parent_execution_id)s, parent_task_id = %(parent_task_id)s,
    next_event_id = 0, history_len = 0, open_ids = '[]', retries = '{}', actions = '[]',
    lease_token = NULL, lease_expires = NULL, episode_attempts = 0, last_error = NULL
WHERE instance_id = %(instance_id)s AND status IN ('Completed', 'Failed', 'Terminated')
RETURNING instance_id
"""

LOCK_INSTANCE = "SELECT status FROM instances WHERE instance_id = %s FOR UPDATE"

CLAIM_ACTIVITIES = """
WITH ready AS (
    SELECT id FROM activities
    WHERE lease_expires IS NULL OR lease_expires < now()
    ORDER BY id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE activities a
SET lease_token = %(token)s, lease_expires = now() + make_interval(secs => %(lease)s),
    attempts = a.attempts + 1
FROM ready WHERE a.id = ready.id
RETURNING a.id, a.instance_id, a.execution_id, a.task_id, a.name, a.input, now()
"""

#: Completing activities is one statement: the claim is removed and the completion enqueued
#: together, and only while the claim's lease token still holds (at-least-once, never twice).
COMPLETE_ACTIVITIES = """
WITH done AS (
    DELETE FROM activities a
    USING unnest(%s::bigint[], %s::uuid[], %s::text[]) AS d(id, token, event)
    WHERE a.id = d.id AND a.lease_token = d.token
    RETURNING a.instance_id, a.execution_id, a.task_id, d.event
)
INSERT INTO inbox (instance_id, execution_id, event, task_id)
SELECT instance_id, execution_id, event, task_id FROM done
"""

RENEW_ACTIVITIES = """
UPDATE activities SET lease_expires = now() + make_interval(secs => %s) WHERE lease_token = ANY(%s)
"""
RENEW_INSTANCES = """
UPDATE instances SET lease_expires = now() + make_interval(secs => %s) WHERE lease_token = ANY(%s)
"""
RELEASE_ACTIVITIES = """
UPDATE activities SET lease_token = NULL, lease_expires = NULL WHERE lease_token = ANY(%s)
"""
#: A released claim (graceful stop) is handed back, not failed: its attempt is not counted.
RELEASE_INSTANCES = """
UPDATE instances SET lease_token = NULL, lease_expires = NULL,
    episode_attempts = greatest(episode_attempts - 1, 0)
WHERE lease_token = ANY(%s)
"""

NEXT_DUE = "SELECT (SELECT min(visible_at) FROM inbox WHERE visible_at > now()), now()"
