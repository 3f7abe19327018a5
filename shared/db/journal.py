"""Audit rows, outbox events and orchestration signals: what every state change writes beside itself.

`transition_team` / `transition_task` are the one guarded statement that changes a team's or a task's
status: it locks the row (a task's team first: the lock order of docs/architecture.md), checks the
expected current status (and `version` when the caller has one), updates, writes the
`*.status_changed` audit row, takes the team's next event `seq` and writes the outbox row, all in one
round trip. A lost race finds the row already moved and changes nothing.

`signal` writes what an orchestration must be told (start, an external event) into the same
transaction; `shared.services.signals` sends it after the commit and a timer re-sends what is left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from shared.db.database import Tx
from shared.domain.errors import IllegalTransition, NotFound
from shared.domain.ids import uuid7
from shared.domain.models import Actor, TaskRecord, TeamScope

Entity = Literal["team", "task"]
SignalKind = Literal["start", "event"]

_SIGNAL = """
INSERT INTO orchestration_signals (id, company_id, team_id, instance_id, kind, name, payload)
VALUES (%(id)s, %(company_id)s, %(team_id)s, %(instance_id)s, %(kind)s, %(name)s, %(payload)s)
"""

_AUDIT = """
INSERT INTO audit_events (id, company_id, team_id, task_id, actor_type, actor_id, event_type, payload)
VALUES (%(id)s, %(company_id)s, %(team_id)s, %(task_id)s, %(actor_type)s, %(actor_id)s, %(event_type)s,
        %(payload)s)
"""

_EVENT = """
WITH s AS (UPDATE teams SET event_seq = event_seq + 1 WHERE id = %(team_id)s RETURNING event_seq)
INSERT INTO team_events (team_id, seq, type, task_id, payload)
SELECT %(team_id)s, s.event_seq, %(type)s, %(task_id)s, %(payload)s FROM s
RETURNING seq
"""


async def audit(
    tx: Tx,
    *,
    company_id: UUID,
    actor: Actor,
    event_type: str,
    payload: Mapping[str, Any] | None = None,
    team_id: UUID | None = None,
    task_id: UUID | None = None,
) -> None:
    await tx.conn.execute(
        _AUDIT,
        {
            "id": uuid7(),
            "company_id": company_id,
            "team_id": team_id,
            "task_id": task_id,
            "actor_type": actor.type,
            "actor_id": actor.id,
            "event_type": event_type,
            "payload": Jsonb(dict(payload or {})),
        },
    )
    if team_id is None:
        tx.audited(company_id)
    else:
        tx.touched(company_id, team_id)


async def emit(
    tx: Tx, *, team_id: UUID, event_type: str, data: Mapping[str, Any], task_id: UUID | None = None
) -> int:
    """Append to the team's outbox with the next gap-free `seq` (the team row lock orders writers)."""
    cur = await tx.conn.execute(
        _EVENT, {"team_id": team_id, "type": event_type, "task_id": task_id, "payload": Jsonb(dict(data))}
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound("team not found")
    tx.changes.events += 1
    seq: int = row["seq"] if isinstance(row, Mapping) else row[0]
    return seq


async def record(
    tx: Tx,
    *,
    company_id: UUID,
    team_id: UUID,
    actor: Actor,
    event_type: str,
    data: Mapping[str, Any],
    task_id: UUID | None = None,
) -> int:
    """An audit row and an outbox event of the same type and payload (the common case)."""
    await audit(
        tx, company_id=company_id, actor=actor, event_type=event_type, payload=data, team_id=team_id,
        task_id=task_id,
    )
    return await emit(tx, team_id=team_id, event_type=event_type, data=data, task_id=task_id)


async def signal(
    tx: Tx,
    *,
    company_id: UUID,
    team_id: UUID,
    instance_id: str,
    name: str,
    payload: Mapping[str, Any] | None = None,
    kind: SignalKind = "event",
) -> UUID:
    """Queue a signal to an orchestration in this transaction; the id is the outbox row's."""
    signal_id = uuid7()
    await tx.conn.execute(_SIGNAL, {"id": signal_id, "company_id": company_id, "team_id": team_id,
                                    "instance_id": instance_id, "kind": kind, "name": name,
                                    "payload": Jsonb(dict(payload or {}))})
    tx.changes.signals += 1
    tx.touched(company_id, team_id)
    return signal_id


def _team_statement(sets: Sequence[str], company_guard: bool, version_guard: bool) -> sql.Composed:
    extra = sql.SQL("").join(sql.SQL(", ") + sql.SQL(s) for s in sets)  # type: ignore[arg-type]
    return sql.SQL(
        """
WITH cur AS (
    SELECT id, status FROM teams WHERE id = %(id)s {company_guard} FOR UPDATE
), upd AS (
    UPDATE teams t SET status = %(to)s, version = t.version + 1, event_seq = t.event_seq + 1 {extra}
    FROM cur WHERE t.id = cur.id AND cur.status = ANY(%(sources)s) {version_guard}
    RETURNING t.*, cur.status AS from_status
), aud AS (
    INSERT INTO audit_events (id, company_id, team_id, task_id, actor_type, actor_id, event_type, payload)
    SELECT %(audit_id)s, upd.company_id, upd.id, NULL, %(actor_type)s, %(actor_id)s, 'team.status_changed',
           jsonb_build_object('from', upd.from_status, 'to', upd.status) || %(payload)s
    FROM upd
), ev AS (
    INSERT INTO team_events (team_id, seq, type, task_id, payload)
    SELECT upd.id, upd.event_seq, 'team.status_changed', NULL,
           jsonb_build_object('from', upd.from_status, 'to', upd.status, 'version', upd.version) || %(payload)s
    FROM upd
)
SELECT cur.status AS current_status, upd.* FROM cur LEFT JOIN upd ON true
"""
    ).format(
        company_guard=sql.SQL("AND company_id = %(company_id)s" if company_guard else ""),
        version_guard=sql.SQL("AND t.version = %(version)s" if version_guard else ""),
        extra=extra,
    )


def _task_statement(sets: Sequence[str], company_guard: bool, version_guard: bool) -> sql.Composed:
    extra = sql.SQL("").join(sql.SQL(", ") + sql.SQL(s) for s in sets)  # type: ignore[arg-type]
    # `cur` joins `team`, so the team row is locked before the task row (lock order: team, then task).
    return sql.SQL(
        """
WITH team AS (
    SELECT tm.id FROM teams tm WHERE tm.id = (SELECT team_id FROM tasks WHERE id = %(id)s) FOR UPDATE
), cur AS (
    SELECT k.id, k.status FROM tasks k JOIN team ON team.id = k.team_id
    WHERE k.id = %(id)s {company_guard} FOR UPDATE OF k
), upd AS (
    UPDATE tasks t SET status = %(to)s, version = t.version + 1 {extra}
    FROM cur WHERE t.id = cur.id AND cur.status = ANY(%(sources)s) {version_guard}
    RETURNING t.*, cur.status AS from_status
), aud AS (
    INSERT INTO audit_events (id, company_id, team_id, task_id, actor_type, actor_id, event_type, payload)
    SELECT %(audit_id)s, upd.company_id, upd.team_id, upd.id, %(actor_type)s, %(actor_id)s,
           'task.status_changed', jsonb_build_object('from', upd.from_status, 'to', upd.status) || %(payload)s
    FROM upd
), seq AS (
    UPDATE teams SET event_seq = teams.event_seq + 1 FROM upd WHERE teams.id = upd.team_id
    RETURNING teams.event_seq
), ev AS (
    INSERT INTO team_events (team_id, seq, type, task_id, payload)
    SELECT upd.team_id, seq.event_seq, 'task.status_changed', upd.id,
           jsonb_build_object('from', upd.from_status, 'to', upd.status, 'title', upd.title,
                              'version', upd.version, 'revision_count', upd.revision_count) || %(payload)s
    FROM upd, seq
)
SELECT cur.status AS current_status, upd.* FROM cur LEFT JOIN upd ON true
"""
    ).format(
        company_guard=sql.SQL("AND k.company_id = %(company_id)s" if company_guard else ""),
        version_guard=sql.SQL("AND t.version = %(version)s" if version_guard else ""),
        extra=extra,
    )


async def transition_team(tx: Tx, **kwargs: Any) -> TeamScope:
    """Move a team (see `_transition` for the arguments); the moved row."""
    return TeamScope.model_validate(await _transition(tx, entity="team", **kwargs))


async def transition_task(tx: Tx, **kwargs: Any) -> TaskRecord:
    """Move a task (see `_transition` for the arguments); the moved row."""
    return TaskRecord.model_validate(await _transition(tx, entity="task", **kwargs))


async def _transition(
    tx: Tx,
    *,
    entity: Entity,
    entity_id: UUID,
    target: str,
    sources: Sequence[str],
    actor: Actor,
    company_id: UUID | None = None,
    expected_version: int | None = None,
    sets: Sequence[str] = (),
    params: Mapping[str, Any] | None = None,
    payload: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Move one row to `target`; raise NotFound or IllegalTransition (409) when it cannot move.

    `sets` are extra `column = expression` fragments (constants of the calling service, never user
    text); their values come in `params`.
    """
    build = _team_statement if entity == "team" else _task_statement
    statement = build(tuple(sets), company_id is not None, expected_version is not None)
    args: dict[str, Any] = {
        "id": entity_id,
        "to": target,
        "sources": list(sources),
        "company_id": company_id,
        "version": expected_version,
        "audit_id": uuid7(),
        "actor_type": actor.type,
        "actor_id": actor.id,
        "payload": Jsonb(dict(payload or {})),
        **(params or {}),
    }
    cur = await tx.conn.execute(statement, args)
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"{entity} not found")
    if row["id"] is None:
        current = row["current_status"]
        if current in sources and expected_version is not None:
            raise IllegalTransition(entity, current, target).with_detail(
                f"{entity} was changed by someone else (stale version {expected_version})"
            )
        raise IllegalTransition(entity, current, target)
    team_id = row["id"] if entity == "team" else row["team_id"]
    tx.touched(row["company_id"], team_id)
    tx.changes.events += 1
    return dict(row)
