"""Great-circle distances for routing: integer metres, as PyVRP wants them. numpy is imported
in the functions: a logistics process that has routed nothing does not hold it (issue #16)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)


def haversine_m(lat, lon) -> np.ndarray:
    """Square matrix of great-circle distances in metres (float) between the given points."""
    import numpy as np

    la = np.radians(np.asarray(lat, dtype=float))
    lo = np.radians(np.asarray(lon, dtype=float))
    dlat = la[None, :] - la[:, None]
    dlon = lo[None, :] - lo[:, None]
    a = np.sin(dlat / 2) ** 2 + np.cos(la)[:, None] * np.cos(la)[None, :] * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def road_matrices(lat, lon, *, road_factor: float, speed_kmh: float) -> tuple[np.ndarray, np.ndarray]:
    """(distance in metres, travel time in seconds) as int64 matrices with a zero diagonal."""
    import numpy as np

    dist = np.rint(haversine_m(lat, lon) * road_factor).astype(np.int64)
    dur = np.rint(dist / (speed_kmh / 3.6)).astype(np.int64)
    np.fill_diagonal(dist, 0)
    np.fill_diagonal(dur, 0)
    return dist, dur


def local_xy_m(lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """Equirectangular projection around the points' centre, in metres (display / neighbours)."""
    import numpy as np

    la = np.radians(np.asarray(lat, dtype=float))
    lo = np.radians(np.asarray(lon, dtype=float))
    la0 = float(la.mean()) if la.size else 0.0
    lo0 = float(lo.mean()) if lo.size else 0.0
    return (EARTH_RADIUS_M * (lo - lo0) * np.cos(la0), EARTH_RADIUS_M * (la - la0))
