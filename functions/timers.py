"""Timer triggers: the outbox sweeps that send whatever the after-commit kicks left behind."""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from shared.realtime import realtime_of
from shared.runtime import get_context

log = logging.getLogger(__name__)
bp = df.Blueprint()

#: Every 5 seconds (NCRONTAB with seconds): the longest an event waits after a crash or an outage.
SWEEP_SCHEDULE = "*/5 * * * * *"


@bp.function_name("realtime_outbox_sweep")
@bp.timer_trigger(schedule=SWEEP_SCHEDULE, arg_name="timer", run_on_startup=True, use_monitor=False)
async def realtime_outbox_sweep(timer: func.TimerRequest) -> None:
    realtime = realtime_of((await get_context()).db)
    if realtime is None:
        return
    sent = await realtime.publisher.sweep()
    if sent:
        log.info("outbox sweep sent %d event(s)%s", sent, " (past due)" if timer.past_due else "")


@bp.function_name("orchestration_outbox_sweep")
@bp.timer_trigger(schedule=SWEEP_SCHEDULE, arg_name="timer", run_on_startup=True, use_monitor=False)
@bp.durable_client_input(client_name="client")
async def orchestration_outbox_sweep(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Send the orchestration signals a failed dispatch left behind; bill LLM calls abandoned mid-call."""
    services = (await get_context()).services
    sent = await services.signals.dispatch(client)
    billed = await services.costs.bill_abandoned()
    if sent or billed:
        log.info("orchestration sweep: %d signal(s) sent, %d abandoned call(s) billed at their worst case",
                 sent, billed)
