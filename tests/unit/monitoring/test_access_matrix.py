"""docs/integration.md's access matrix says in its monitoring column who reads the ingest's dead
letters, and it is who the code lets (SENSOR_READ_ROLES, as zone status)."""

from pathlib import Path

from services.monitoring.handlers.base import SENSOR_READ_ROLES

DOC = Path(__file__).resolve().parents[3] / "docs" / "integration.md"


def monitoring_cells() -> dict[str, str]:
    """role → its monitoring cell, from the table whose header ends with `monitoring`."""
    cells: dict[str, str] = {}
    header = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            header = None
            continue
        row = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = row
            continue
        if header[-1] != "monitoring" or set(row[0]) <= {"-"}:
            continue
        for role in row[0].split("`")[1::2]:
            cells[role] = row[-1]
    return cells


def test_the_ingest_dead_letters_are_listed_for_exactly_the_roles_that_read_them():
    cells = monitoring_cells()
    assert cells, "no access matrix with a monitoring column in docs/integration.md"
    for role, cell in cells.items():
        if cell == "everything":
            continue
        assert ("ListIngestDeadLetters" in cell) == (role in SENSOR_READ_ROLES), (role, cell)
