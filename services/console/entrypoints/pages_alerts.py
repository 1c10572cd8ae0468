"""Live alerts (being built)."""

routes: list = []


async def start(console) -> None:
    pass


async def stop(console) -> None:
    pass
