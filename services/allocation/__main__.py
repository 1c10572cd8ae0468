import sys

if sys.argv[1:2] == ["cutoff"]:
    from services.allocation.entrypoints.cutoff import main as cutoff

    sys.exit(cutoff(sys.argv[2:]))

from services.launcher import main  # noqa: E402

main("allocation")
