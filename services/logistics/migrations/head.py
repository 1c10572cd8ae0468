"""The head revision of logistics's migrations, read by check_at_head without importing alembic;
tests/unit/common/test_migration_heads.py fails when a migration is added and this is not updated."""

HEAD = "0002"
