"""`python -m services.logistics.reconcile [--export FILE]`: verify the ledger's hash chain and
compare every stored lot balance with the ledger; exits 1 on any mismatch. See
services/logistics/entrypoints/audit_cli.py."""

import sys

from services.logistics.entrypoints.audit_cli import main

if __name__ == "__main__":
    sys.exit(main())
