"""`make bench` / `python -m bench [--quick] [NAME…]`: run every benchmark under bench/, each in
its own process (so one's memory and threads do not colour another's figures). startup.py stops the
stack `make bench` brought up, measures `supplyctl up` from cold, and brings it up again."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    args = sys.argv[1:]
    quick = "--quick" in args
    names = [a for a in args if not a.startswith("-")]
    scripts = sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_"))
    if names:
        scripts = [p for p in scripts if any(n in p.stem for n in names)]
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem} {'(quick)' if quick else ''} ===", flush=True)
        started = time.monotonic()
        rc = subprocess.call([sys.executable, str(script), *(["--quick"] if quick else [])])
        print(f"--- {script.stem}: exit {rc} in {time.monotonic() - started:.1f} s", flush=True)
        if rc:
            failed.append(script.stem)
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
