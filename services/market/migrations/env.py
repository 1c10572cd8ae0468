from alembic import context

from services.common.migrate import run_env
from services.market.adapters.schema import metadata

run_env(context, metadata)
