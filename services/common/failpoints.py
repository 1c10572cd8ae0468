"""Failpoints: named places where a test can make a process die on purpose, to prove that
nothing is lost between a commit and a publish, or between a commit and an ack.

Set SUPPLY_FAILPOINTS=name[,name…]; the process exits abruptly (no cleanup, like a SIGKILL or
power cut) the first time it reaches the named point. `hang:name` blocks there forever instead,
as a dependency that never answers would. Unset in production.
"""

import os
import threading

_ACTIVE = frozenset(filter(None, os.environ.get("SUPPLY_FAILPOINTS", "").split(",")))


def failpoint(name: str) -> None:
    if name in _ACTIVE:
        os._exit(75)
    if f"hang:{name}" in _ACTIVE:
        threading.Event().wait()
