"""Operations on a whole installation (backup and restore) rather than on one service."""
