from alembic import context

from services.allocation.adapters.schema import metadata
from services.common.migrate import run_env

run_env(context, metadata)
