"""`python -m services.allocation cutoff`: make the plan of the day whose cut-off has passed,
once (a plain process: gRPC to logistics and the engine's CPU stay out of the eventlet worker).

The worker's timer runs it when the cut-off is due; operators may run it by hand or from cron.
Exit status: 0 planned or nothing due (already planned, before the cut-off); 75 logistics did not
answer (try again later); 1 any other failure.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("services.allocation.cutoff")

EX_TEMPFAIL = 75


def main(argv: list[str]) -> int:
    from services.allocation.adapters.stock import StockUnavailable
    from services.allocation.bootstrap import build_context, grpc_stock_source
    from services.allocation.handlers.cutoff import run_cutoff
    from services.common.config import ConfigError, load_settings
    from services.common.logs import setup_logging

    if argv:
        print("usage: python -m services.allocation cutoff", file=sys.stderr)
        return 2
    try:
        settings = load_settings("allocation")
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 1
    setup_logging("allocation", "cutoff", settings.log_level)
    stock = grpc_stock_source(settings)
    try:
        ctx = build_context(settings, pool_size=2, stock=stock)
        view = run_cutoff(ctx)
    except StockUnavailable as exc:
        log.error("cut-off: stock unavailable, will retry", extra={"error": str(exc)})
        return EX_TEMPFAIL
    except Exception:
        log.exception("cut-off failed")
        return 1
    finally:
        stock.close()
    if view is None:
        log.info("cut-off: nothing due")
        return 0
    h = view.header
    log.info("cut-off: plan proposed", extra={
        "plan_id": h.plan_id, "delivery_day": h.delivery_day.isoformat(), "version": h.version,
        "lines": view.details.totals.lines, "unmet_lines": view.details.totals.unmet_lines})
    return 0
