-- Hard budget cap, exact billing, and signals to orchestrations through an outbox (issue 14).

-- A reservation holds the worst-case cost of an LLM call that is in flight. A call is made only when
-- spent + reserved + its worst case fits the budget (one guarded UPDATE), and settling replaces the
-- reservation by the real cost, which never exceeds it: spent_usd <= budget_usd at every instant.
ALTER TABLE teams
    ADD COLUMN reserved_usd numeric(16, 8) NOT NULL DEFAULT 0 CHECK (reserved_usd >= 0);

-- One cost row per LLM call *attempt* (keyed by a call id made when the call is reserved), so a call
-- re-executed after a crash or a retry is billed again, as the provider billed it again.
--   reserved   the call may be in flight; reserved_usd is held against the budget
--   settled    the provider answered with usage: cost_usd is the real cost
--   released   the provider answered without usage (an error): nothing is billed
--   estimated  the process died mid-call: billed at the worst case (the provider may have served it)
ALTER TABLE cost_tracking
    ADD COLUMN status text NOT NULL DEFAULT 'settled'
        CHECK (status IN ('reserved', 'settled', 'released', 'estimated')),
    ADD COLUMN reserved_usd numeric(16, 8) NOT NULL DEFAULT 0 CHECK (reserved_usd >= 0),
    ADD COLUMN max_tokens integer CHECK (max_tokens IS NULL OR max_tokens > 0),
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN settled_at timestamptz;
CREATE INDEX cost_tracking_reserved_idx ON cost_tracking (expires_at) WHERE status = 'reserved';

-- Signals to orchestrations (start, external events), written in the transaction of the state
-- change that causes them and sent by a dispatcher afterwards; a timer re-sends what is pending.
CREATE TABLE orchestration_signals (
    id               uuid PRIMARY KEY,
    company_id       uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    team_id          uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    instance_id      text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('start', 'event')),
    name             text NOT NULL,  -- the orchestrator (start) or the event name (event)
    payload          jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_error       text,
    sent_at          timestamptz,
    outcome          text CHECK (outcome IS NULL OR outcome IN ('delivered', 'started', 'already_started',
                                                                'instance_finished'))
);
CREATE INDEX orchestration_signals_pending_idx ON orchestration_signals (next_attempt_at, created_at)
    WHERE sent_at IS NULL;
CREATE INDEX orchestration_signals_team_idx ON orchestration_signals (team_id, created_at);
