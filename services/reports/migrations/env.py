from alembic import context

from services.common.migrate import run_env
from services.reports.adapters.schema import metadata

run_env(context, metadata)
