"""Village and grid worker pages (being built)."""

from starlette.responses import Response

routes: list = []


async def service_worker(request) -> Response:
    return Response("", media_type="text/javascript")
