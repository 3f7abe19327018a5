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
    lease_token         uuid,
    lease_expires       timestamptz,   -- also the earliest retry of a failed episode (backoff)
    episode_attempts    integer NOT NULL DEFAULT 0,   -- claims since the last committed episode
    last_error          text                          -- why the last attempt failed
);
-- Upgrade a data dir created before these columns existed (idempotent).
ALTER TABLE instances ADD COLUMN IF NOT EXISTS episode_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN IF NOT EXISTS last_error text;
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
    lease_expires timestamptz
);

CREATE OR REPLACE FUNCTION notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_durable', TG_ARGV[0]);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER inbox_notify AFTER INSERT ON inbox
    FOR EACH STATEMENT EXECUTE FUNCTION notify_work('e');
CREATE OR REPLACE TRIGGER activities_notify AFTER INSERT ON activities
    FOR EACH STATEMENT EXECUTE FUNCTION notify_work('a');
