-- Durable backend tables. Run with search_path set to the backend's schema, under an advisory
-- lock, so it is idempotent and safe when several processes start at once.

CREATE TABLE IF NOT EXISTS instances (
    instance_id         text PRIMARY KEY,
    execution_id        text NOT NULL,
    name                text NOT NULL,
    version             text NOT NULL DEFAULT '',
    status              text NOT NULL CHECK (status IN
                            ('Pending', 'Running', 'Suspended', 'Completed', 'Failed', 'Terminated')),
    input               text,            -- ExecutionStarted.Input (JSON text)
    output              text,            -- JSON text: return value, or failure/termination reason
    custom_status       text,            -- JSON text
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    parent_instance_id  text,
    parent_execution_id text,
    parent_task_id      integer,
    next_event_id       integer NOT NULL DEFAULT 0,   -- mirror of the SDK's sequence counter
    history_len         integer NOT NULL DEFAULT 0,
    open_ids            jsonb NOT NULL DEFAULT '[]',  -- scheduled ids awaiting completion
    retries             jsonb NOT NULL DEFAULT '{}',  -- retry state by current task/timer id
    actions             jsonb NOT NULL DEFAULT '[]',  -- signatures of recorded actions + their ids
    lease_token         uuid,          -- the fencing token: a commit must present it
    lease_expires       timestamptz,   -- also the earliest retry of a failed episode (backoff)
    lease_owner         text,          -- host identity holding the lease (reclaimed when it restarts)
    history_holder      uuid,          -- backend run that wrote the last episode (it caches the history)
    episode_attempts    integer NOT NULL DEFAULT 0,   -- claims since the last committed episode
    last_error          text                          -- why the last attempt failed
);
-- Upgrade a data dir created before these columns existed (idempotent).
ALTER TABLE instances ADD COLUMN IF NOT EXISTS episode_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN IF NOT EXISTS last_error text;
ALTER TABLE instances ADD COLUMN IF NOT EXISTS lease_owner text;
ALTER TABLE instances ADD COLUMN IF NOT EXISTS history_holder uuid;
CREATE INDEX IF NOT EXISTS instances_created_at ON instances (created_at);

CREATE TABLE IF NOT EXISTS history (
    instance_id text NOT NULL,
    seq         integer NOT NULL,
    event       text NOT NULL,   -- DTFx history event JSON, stored as played
    PRIMARY KEY (instance_id, seq)
);

-- Messages waiting for an instance: new history events (visible_at in the future = timer)
-- and control messages (terminate, suspend, resume).
CREATE TABLE IF NOT EXISTS inbox (
    id           bigserial PRIMARY KEY,
    instance_id  text NOT NULL,
    execution_id text,            -- NULL for external events, which any execution may receive
    kind         text NOT NULL DEFAULT 'event' CHECK (kind IN ('event', 'control')),
    event        text NOT NULL,
    task_id      integer,
    visible_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS inbox_instance ON inbox (instance_id, id);
CREATE INDEX IF NOT EXISTS inbox_visible_at ON inbox (visible_at);

CREATE TABLE IF NOT EXISTS activities (
    id            bigserial PRIMARY KEY,
    instance_id   text NOT NULL,
    execution_id  text NOT NULL,
    task_id       integer NOT NULL,
    name          text NOT NULL,
    input         text,
    attempts      integer NOT NULL DEFAULT 0,
    lease_token   uuid,
    lease_expires timestamptz,
    lease_owner   text
);
ALTER TABLE activities ADD COLUMN IF NOT EXISTS lease_owner text;

CREATE OR REPLACE FUNCTION notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_durable', TG_ARGV[0]);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER inbox_notify AFTER INSERT ON inbox
    FOR EACH STATEMENT EXECUTE FUNCTION notify_work('e');
-- Activity calls an episode's commit leased to its own host at once (local dispatch) are no
-- work for anyone else: only unleased new calls wake the hosts.
CREATE OR REPLACE FUNCTION notify_unleased_activities() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_activities WHERE lease_token IS NULL) THEN
        PERFORM pg_notify(TG_TABLE_SCHEMA || '_durable', 'a');
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER activities_notify AFTER INSERT ON activities
    REFERENCING NEW TABLE AS new_activities
    FOR EACH STATEMENT EXECUTE FUNCTION notify_unleased_activities();

-- One episode's commit: one statement, so one round trip and one transaction (autocommit).
-- The fence comes first: unless the claim's lease token still holds, nothing is written and
-- the result is false (the worker raises LeaseLost). Then the history rows, the consumed and
-- dropped messages, cancelled timers, activity calls, sub-orchestrations (a finished id is
-- reused; a live one makes the parent's call fail instead) and the new messages.
--
-- Local dispatch: the first `p_dispatch_limit` new activity calls are leased at once to the
-- committing host (`p_dispatch_token`, its identity, a `p_dispatch_lease`-second lease), as if
-- it had claimed them: it runs them without a claim round trip. The result is the ids of those
-- calls, in task order (empty when none), or NULL when the lease was lost (nothing written).
-- The first version returned a boolean and took no dispatch parameters; it is dropped.
DROP FUNCTION IF EXISTS commit_episode(
    text, uuid, uuid, text, text, text, text, text, text, boolean, integer, jsonb, jsonb, jsonb,
    integer, text[], bigint[], boolean, integer[], integer[], text[], text[], text[], text[], text[],
    text[], timestamptz[], integer[], text[], text[], text[], text[], integer[], text[], text[]);
CREATE OR REPLACE FUNCTION commit_episode(
    p_instance_id text, p_token uuid, p_holder uuid,
    p_status text, p_output text, p_custom_status text,
    p_old_execution_id text, p_execution_id text, p_input text, p_restarted boolean,
    p_next_event_id integer, p_open_ids jsonb, p_retries jsonb, p_new_actions jsonb,
    p_history_from integer, p_history text[],
    p_consumed bigint[], p_drop_pending boolean, p_canceled_timers integer[],
    p_activity_tasks integer[], p_activity_names text[], p_activity_inputs text[],
    p_message_instances text[], p_message_executions text[], p_message_kinds text[],
    p_message_events text[], p_message_visible timestamptz[], p_message_tasks integer[],
    p_child_ids text[], p_child_executions text[], p_child_names text[], p_child_inputs text[],
    p_child_tasks integer[], p_child_started text[], p_child_failed text[],
    p_dispatch_token uuid, p_dispatch_owner text, p_dispatch_lease double precision, p_dispatch_limit integer
) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_appended integer := coalesce(cardinality(p_history), 0);
    v_inserted boolean;
    v_dispatched bigint[] := '{}';
BEGIN
    UPDATE instances SET
        status = p_status, output = coalesce(p_output, output), custom_status = p_custom_status,
        execution_id = p_execution_id, input = p_input, next_event_id = p_next_event_id,
        history_len = CASE WHEN p_restarted THEN 0 ELSE p_history_from + v_appended END,
        open_ids = p_open_ids, retries = p_retries,
        -- unchanged when nothing is new: a large value keeps its TOAST pointer (no rewrite)
        actions = CASE WHEN p_restarted THEN p_new_actions
                       WHEN jsonb_array_length(p_new_actions) = 0 THEN actions
                       ELSE actions || p_new_actions END,
        updated_at = now(), lease_token = NULL, lease_expires = NULL, lease_owner = NULL,
        history_holder = p_holder, episode_attempts = 0, last_error = NULL
    WHERE instance_id = p_instance_id AND lease_token = p_token;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF p_restarted THEN
        DELETE FROM history WHERE instance_id = p_instance_id;
        DELETE FROM inbox WHERE instance_id = p_instance_id AND execution_id = p_old_execution_id;
    ELSIF v_appended > 0 THEN
        INSERT INTO history (instance_id, seq, event)
        SELECT p_instance_id, p_history_from + h.n - 1, h.event
        FROM unnest(p_history) WITH ORDINALITY AS h(event, n);
    END IF;
    IF p_drop_pending THEN
        DELETE FROM inbox WHERE instance_id = p_instance_id;
    ELSIF cardinality(p_consumed) > 0 THEN
        DELETE FROM inbox WHERE id = ANY(p_consumed);
    END IF;
    IF cardinality(p_canceled_timers) > 0 THEN
        DELETE FROM inbox WHERE instance_id = p_instance_id AND execution_id = p_old_execution_id
            AND task_id = ANY(p_canceled_timers);
    END IF;
    IF cardinality(p_activity_tasks) > 0 THEN
        WITH added AS (
            INSERT INTO activities (instance_id, execution_id, task_id, name, input,
                                    lease_token, lease_owner, lease_expires, attempts)
            SELECT p_instance_id, p_old_execution_id, a.task_id, a.name, a.input,
                   CASE WHEN a.n <= p_dispatch_limit THEN p_dispatch_token END,
                   CASE WHEN a.n <= p_dispatch_limit THEN p_dispatch_owner END,
                   CASE WHEN a.n <= p_dispatch_limit THEN now() + make_interval(secs => p_dispatch_lease) END,
                   CASE WHEN a.n <= p_dispatch_limit THEN 1 ELSE 0 END
            FROM unnest(p_activity_tasks, p_activity_names, p_activity_inputs) WITH ORDINALITY
                AS a(task_id, name, input, n)
            RETURNING id, task_id, lease_token
        )
        SELECT coalesce(array_agg(id ORDER BY task_id) FILTER (WHERE lease_token IS NOT NULL), '{}')
        INTO v_dispatched FROM added;
    END IF;
    FOR i IN 1 .. coalesce(cardinality(p_child_ids), 0) LOOP
        INSERT INTO instances AS x (instance_id, execution_id, name, version, status, input,
                                    parent_instance_id, parent_execution_id, parent_task_id)
        VALUES (p_child_ids[i], p_child_executions[i], p_child_names[i], '', 'Pending', p_child_inputs[i],
                p_instance_id, p_old_execution_id, p_child_tasks[i])
        ON CONFLICT (instance_id) DO UPDATE SET
            execution_id = excluded.execution_id, name = excluded.name, version = excluded.version,
            status = 'Pending', input = excluded.input, output = NULL, custom_status = NULL,
            created_at = now(), updated_at = now(), parent_instance_id = excluded.parent_instance_id,
            parent_execution_id = excluded.parent_execution_id, parent_task_id = excluded.parent_task_id,
            next_event_id = 0, history_len = 0, open_ids = '[]', retries = '{}', actions = '[]',
            lease_token = NULL, lease_expires = NULL, lease_owner = NULL, history_holder = NULL,
            episode_attempts = 0, last_error = NULL
        WHERE x.status IN ('Completed', 'Failed', 'Terminated')
        RETURNING (x.xmax = 0) INTO v_inserted;  -- xmax 0: a new row, else a reused finished id
        IF NOT FOUND THEN  -- the id belongs to a live instance: the parent's call fails
            p_message_instances := p_message_instances || p_instance_id;
            p_message_executions := p_message_executions || p_old_execution_id;
            p_message_events := p_message_events || p_child_failed[i];
            p_message_tasks := p_message_tasks || p_child_tasks[i];
        ELSE
            IF NOT v_inserted THEN
                DELETE FROM history WHERE instance_id = p_child_ids[i];
                DELETE FROM inbox WHERE instance_id = p_child_ids[i];
                DELETE FROM activities WHERE instance_id = p_child_ids[i];
            END IF;
            p_message_instances := p_message_instances || p_child_ids[i];
            p_message_executions := p_message_executions || p_child_executions[i];
            p_message_events := p_message_events || p_child_started[i];
            p_message_tasks := p_message_tasks || NULL::integer;
        END IF;
        p_message_kinds := p_message_kinds || 'event'::text;
        p_message_visible := p_message_visible || NULL::timestamptz;
    END LOOP;
    IF cardinality(p_message_instances) > 0 THEN
        INSERT INTO inbox (instance_id, execution_id, kind, event, visible_at, task_id)
        SELECT m.instance_id, m.execution_id, m.kind, m.event, coalesce(m.visible_at, now()), m.task_id
        FROM unnest(p_message_instances, p_message_executions, p_message_kinds, p_message_events,
                    p_message_visible, p_message_tasks)
            AS m(instance_id, execution_id, kind, event, visible_at, task_id);
    END IF;
    RETURN v_dispatched;
END $$;
