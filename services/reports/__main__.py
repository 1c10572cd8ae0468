import sys

from services.reports.cli import main

sys.exit(main())
