"""`python -m services.console web`: the county console (HTTP, port CONSOLE_HTTP_PORT, 8080)."""

import sys

from services.common.config import ConfigError
from services.common.logs import setup_logging


def main(argv: list[str]) -> None:
    if argv != ["web"]:
        sys.exit("usage: python -m services.console web")
    from services.console.config import load_console_settings

    try:
        settings = load_console_settings()
        setup_logging("console", "web", settings.common.log_level)
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    from services.console.entrypoints.web import run

    run(settings)


main(sys.argv[1:])
