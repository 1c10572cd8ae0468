import sys

if sys.argv[1:2] == ["scheduler"]:
    from services.launcher import main as launch

    launch("reports", sys.argv[1:])
else:
    from services.reports.cli import main

    sys.exit(main())
