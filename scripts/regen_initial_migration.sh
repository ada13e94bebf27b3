#!/usr/bin/env bash
# Development only, while no database has been deployed: rebuild migration 0001 from the models.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f service/store/migrations/versions/0001_*.py /tmp/omatrust-gen.db
python - <<'PY'
from alembic import command
from service.store.migrate import alembic_config
command.revision(alembic_config(url="sqlite:////tmp/omatrust-gen.db"), message="initial schema", autogenerate=True, rev_id="0001")
PY
# Plain SQLAlchemy types: the migration must not depend on SQLModel internals.
sed -i 's/sqlmodel\.sql\.sqltypes\.AutoString/sa.String/g; /^import sqlmodel$/d' service/store/migrations/versions/0001_*.py
ruff check --fix -q service/store/migrations/versions/ >/dev/null || true
ruff format -q service/store/migrations/versions/
