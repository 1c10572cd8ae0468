from __future__ import annotations

import importlib
import os
import sys

from services.launcher import plain_dns_will_do
from services.workers import SHARED


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    services = list(dict.fromkeys(argv or SHARED))
    if set(services) - set(SHARED):
        sys.exit(f"usage: python -m services.workers [{'|'.join(SHARED)} …]")
    packages = [importlib.import_module(f"services.{s}") for s in services]
    # green DNS unless no service of the process looks names up (notify does: webhooks, SMTP)
    if not any(getattr(p, "GREEN_DNS", False) for p in packages) and plain_dns_will_do(dict(os.environ)):
        os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")  # read when eventlet is imported
    import eventlet

    eventlet.monkey_patch()
    from services.common.config import ConfigError, load_settings
    from services.common.logs import setup_logging
    from services.common.nameko_support import run_worker

    try:
        settings = {s: load_settings(s) for s in services}
        setup_logging("workers", "worker", settings[services[0]].log_level)
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    if len({s.amqp_url for s in settings.values()}) > 1:  # one runner, one broker connection config
        sys.exit("configuration error: the workers of one process need one AMQP_URL")
    classes = [importlib.import_module(f"services.{s}.entrypoints.worker").make_service(settings[s])
               for s in services]
    run_worker(classes, settings[services[0]])


if __name__ == "__main__":
    main()
