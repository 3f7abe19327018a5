"""SQL of the durable backend, one named constant per query. Tables are unqualified: every
connection runs with `search_path` set to the backend's schema."""

from __future__ import annotations

INSTANCE_COLUMNS = """instance_id, execution_id, name, version, status, input, custom_status,
    parent_instance_id, parent_execution_id, parent_task_id, next_event_id, history_len,
    open_ids, retries, actions, lease_token, episode_attempts, last_error"""

#: Lease up to N instances that have a due message and no live lease (a suspended instance
#: only for control messages), and read what their episodes need, in the same round trip: the
#: due messages, and the history unless this backend run wrote the last episode
#: (`history_holder`: its worker has that history cached). SKIP LOCKED keeps concurrent
#: claimers off each other's rows. Each claim counts an attempt (reset by the episode's
#: commit), so an episode that keeps failing, or keeps killing its worker, is seen.
#:
#: Every part of one statement reads the same snapshot, but a row locked after another worker
#: committed an episode of it since that snapshot (READ COMMITTED re-checks the newest row
#: version) would come with messages and history older than the row: the `stale` column says
#: so (the snapshot's `updated_at` is not the claimed row's; every commit sets it), and the
#: worker reads them again. The last column is the database's clock.
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
), claimed AS (
    UPDATE instances s
    SET lease_token = %(token)s, lease_owner = %(owner)s,
        lease_expires = now() + make_interval(secs => %(lease)s),
        episode_attempts = s.episode_attempts + 1
    FROM ready WHERE s.instance_id = ready.instance_id
    RETURNING {", ".join("s." + c.strip() for c in INSTANCE_COLUMNS.split(","))},
        s.history_holder, s.updated_at
)
SELECT {", ".join("c." + c.strip() for c in INSTANCE_COLUMNS.split(","))},
    c.updated_at IS DISTINCT FROM (SELECT x.updated_at FROM instances x WHERE x.instance_id = c.instance_id),
    m.ids, m.executions, m.kinds, m.events,
    CASE WHEN c.history_len > 0 AND c.history_holder IS DISTINCT FROM %(holder)s
              AND c.status NOT IN ('Completed', 'Failed', 'Terminated')
         THEN (SELECT array_agg(h.event ORDER BY h.seq) FROM history h WHERE h.instance_id = c.instance_id)
    END,
    now()
FROM claimed c
LEFT JOIN LATERAL (
    SELECT array_agg(b.id ORDER BY b.id) AS ids, array_agg(b.execution_id ORDER BY b.id) AS executions,
           array_agg(b.kind ORDER BY b.id) AS kinds, array_agg(b.event ORDER BY b.id) AS events
    FROM inbox b WHERE b.instance_id = c.instance_id AND b.visible_at <= now()
) m ON true
"""  # noqa: S608 - SQL built from this module's constants

LOAD_INBOX = """
SELECT id, instance_id, execution_id, kind, event FROM inbox
WHERE instance_id = ANY(%s) AND visible_at <= now() ORDER BY id
"""

LOAD_HISTORY = """
SELECT instance_id, event FROM history WHERE instance_id = ANY(%s) ORDER BY instance_id, seq
"""

#: An episode's whole commit in one statement (sql/schema.sql `commit_episode`): one round
#: trip, one transaction, fenced by the claim's lease token (NULL: the lease was lost, nothing
#: was written; else the ids of the activity calls it leased to this host: local dispatch).
COMMIT_EPISODE = """
SELECT commit_episode(
    %(instance_id)s::text, %(token)s::uuid, %(holder)s::uuid,
    %(status)s::text, %(output)s::text, %(custom_status)s::text,
    %(old_execution_id)s::text, %(execution_id)s::text, %(input)s::text, %(restarted)s::boolean,
    %(next_event_id)s::integer, %(open_ids)s::jsonb, %(retries)s::jsonb, %(new_actions)s::jsonb,
    %(history_from)s::integer, %(history)s::text[],
    %(consumed)s::bigint[], %(drop_pending)s::boolean, %(canceled_timers)s::integer[],
    %(activity_tasks)s::integer[], %(activity_names)s::text[], %(activity_inputs)s::text[],
    %(message_instances)s::text[], %(message_executions)s::text[], %(message_kinds)s::text[],
    %(message_events)s::text[], %(message_visible)s::timestamptz[], %(message_tasks)s::integer[],
    %(child_ids)s::text[], %(child_executions)s::text[], %(child_names)s::text[],
    %(child_inputs)s::text[], %(child_tasks)s::integer[], %(child_started)s::text[],
    %(child_failed)s::text[],
    %(dispatch_token)s::uuid, %(dispatch_owner)s::text, %(dispatch_lease)s::double precision,
    %(dispatch_limit)s::integer)
"""

#: A host that starts with the identity of a dead previous run takes that run's claims back at
#: once instead of waiting for their leases to expire. The attempts those claims counted stay
#: counted (an episode that keeps killing its host is a poison episode all the same).
RECLAIM_OWN = """
WITH i AS (
    UPDATE instances SET lease_token = NULL, lease_expires = NULL, lease_owner = NULL
    WHERE lease_owner = %(owner)s AND lease_token IS NOT NULL RETURNING 1
), a AS (
    UPDATE activities SET lease_token = NULL, lease_expires = NULL, lease_owner = NULL
    WHERE lease_owner = %(owner)s AND lease_token IS NOT NULL RETURNING 1
)
SELECT (SELECT count(*) FROM i), (SELECT count(*) FROM a)
"""

#: A failed episode gives its claim back, claimable again after `delay` seconds (the backoff
#: between attempts; `lease_expires` doubles as "not before"), and says why it failed.
RECORD_EPISODE_FAILURE = """
UPDATE instances SET last_error = %(error)s, lease_token = NULL, lease_owner = NULL,
    lease_expires = now() + make_interval(secs => %(delay)s)
WHERE instance_id = %(instance_id)s AND lease_token = %(token)s
"""

DELETE_HISTORY = "DELETE FROM history WHERE instance_id = %s"
DELETE_INBOX_ALL = "DELETE FROM inbox WHERE instance_id = %s"
DELETE_ACTIVITIES = "DELETE FROM activities WHERE instance_id = %s"

#: A NULL `visible_at` means now, by the database's clock (the one that decides what is due).
INSERT_MESSAGES = """
INSERT INTO inbox (instance_id, execution_id, kind, event, visible_at, task_id)
SELECT m.instance_id, m.execution_id, m.kind, m.event, coalesce(m.visible_at, now()), m.task_id
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::integer[])
    AS m(instance_id, execution_id, kind, event, visible_at, task_id)
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
    lease_token = NULL, lease_expires = NULL, lease_owner = NULL, history_holder = NULL,
    episode_attempts = 0, last_error = NULL
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
SET lease_token = %(token)s, lease_owner = %(owner)s,
    lease_expires = now() + make_interval(secs => %(lease)s), attempts = a.attempts + 1
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
UPDATE activities SET lease_token = NULL, lease_expires = NULL, lease_owner = NULL
WHERE lease_token = ANY(%s)
"""
#: A released claim (graceful stop) is handed back, not failed: its attempt is not counted.
RELEASE_INSTANCES = """
UPDATE instances SET lease_token = NULL, lease_expires = NULL, lease_owner = NULL,
    episode_attempts = greatest(episode_attempts - 1, 0)
WHERE lease_token = ANY(%s)
"""

NEXT_DUE = "SELECT (SELECT min(visible_at) FROM inbox WHERE visible_at > now()), now()"
