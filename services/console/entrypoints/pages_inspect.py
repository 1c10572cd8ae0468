"""Pages of the console (being built)."""

routes: list = []
