-- Tools over MCP (issue 16): a company's tool servers, a team's allow-list, and every tool call as a
-- durable row (requested -> approved if asked -> executed once its result is recorded).

-- A company's MCP servers (streamable HTTP). `tools` is what `tools/list` answered at registration or
-- the last refresh. Header secrets never sit here in clear: `secret_ref` is either `db:<ciphertext>`
-- (Fernet, key TOOL_SECRETS_KEY; local runs) or `kv:<secret name>` (a Key Vault secret; Azure).
CREATE TABLE tool_servers (
    id            uuid PRIMARY KEY,
    company_id    uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
    url           text NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    approval      text NOT NULL DEFAULT 'auto' CHECK (approval IN ('auto', 'ask')),
    header_names  text[] NOT NULL DEFAULT '{}',
    secret_ref    text,
    tools         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tools) = 'array'),
    server_info   jsonb NOT NULL DEFAULT '{}',
    -- The most a call may cost (the server's own price); reserved against the budget before a call.
    max_cost_usd  numeric(12, 4) NOT NULL DEFAULT 0 CHECK (max_cost_usd >= 0),
    status        text NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'unreachable')),
    created_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    refreshed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (company_id, name)
);

-- Which tools a team's workers may call: "<server name>.<tool name>" (validated on create).
ALTER TABLE teams ADD COLUMN tools text[] NOT NULL DEFAULT '{}';

-- One row per tool call a worker's LLM step asked for, with a stable id (the `_meta` call id).
--   requested          recorded with the step's checkpoint; not started
--   awaiting_approval  the server asks for approval: an escalation of type tool_approval is open
--   approved           a person approved it; not started
--   running            started (attempts counts starts: a crash mid-call retries with the same id)
--   succeeded/failed   the result (or the tool's error) is recorded: never executed again
--   denied             a person (or the approval timeout) refused it: never executed
CREATE TABLE tool_calls (
    id                uuid PRIMARY KEY,
    company_id        uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    team_id           uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    task_id           uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    member_id         uuid REFERENCES team_members (id) ON DELETE SET NULL,
    step_number       integer NOT NULL CHECK (step_number >= 1),
    position          integer NOT NULL CHECK (position >= 0),
    server_id         uuid REFERENCES tool_servers (id) ON DELETE SET NULL,
    server_name       text NOT NULL,
    tool_name         text NOT NULL,
    llm_call_id       text NOT NULL,  -- the id the model gave the call (tool_use id / function call id)
    arguments         jsonb NOT NULL DEFAULT '{}',
    approval          text NOT NULL DEFAULT 'auto' CHECK (approval IN ('auto', 'ask')),
    status            text NOT NULL DEFAULT 'requested' CHECK (status IN (
        'requested', 'awaiting_approval', 'approved', 'running', 'succeeded', 'failed', 'denied')),
    escalation_id     uuid REFERENCES escalations (id) ON DELETE SET NULL,
    result            text,
    result_chars      integer,  -- the result's full length (it is stored cut at TOOL_RESULT_STORE_CHARS)
    error             text,
    cost_usd          numeric(16, 8) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    cost_call_id      uuid,  -- the cost_tracking row of the running attempt's reservation
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at        timestamptz,
    finished_at       timestamptz,
    duration_ms       integer CHECK (duration_ms IS NULL OR duration_ms >= 0),
    UNIQUE (task_id, step_number, position),
    CHECK ((status IN ('succeeded', 'failed', 'denied')) = (finished_at IS NOT NULL))
);
CREATE INDEX tool_calls_team_idx ON tool_calls (team_id, created_at);

-- Tool approvals are escalations resolved with approve / deny; the escalation names its call.
ALTER TABLE escalations DROP CONSTRAINT escalations_action_check;
ALTER TABLE escalations ADD CONSTRAINT escalations_action_check
    CHECK (action IN ('retry', 'skip', 'fail', 'provide_input', 'approve', 'deny'));
ALTER TABLE escalations ADD COLUMN tool_call_id uuid REFERENCES tool_calls (id) ON DELETE CASCADE;
