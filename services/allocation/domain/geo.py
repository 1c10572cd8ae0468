"""Distances between requesters and depots, in km, vectorised. numpy is imported in the
functions: the explain handler imports this module in every allocation process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.common.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance matrix: rows = points 1, columns = points 2."""
    import numpy as np

    p1 = np.radians(np.asarray(lat1, dtype=float))[:, None]
    p2 = np.radians(np.asarray(lat2, dtype=float))[None, :]
    dl = np.radians(np.asarray(lon2, dtype=float))[None, :] - np.radians(
        np.asarray(lon1, dtype=float))[:, None]
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def equirectangular_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Flat-earth approximation, good to < 0.1 % within a county."""
    import numpy as np

    la1 = np.radians(np.asarray(lat1, dtype=float))[:, None]
    la2 = np.radians(np.asarray(lat2, dtype=float))[None, :]
    dlon = np.radians(np.asarray(lon2, dtype=float))[None, :] - np.radians(
        np.asarray(lon1, dtype=float))[:, None]
    x = dlon * np.cos((la1 + la2) / 2)
    return EARTH_RADIUS_KM * np.hypot(x, la2 - la1)


DISTANCES = {"haversine": haversine_km, "equirectangular": equirectangular_km}


def distance_matrix(name: str, lat1, lon1, lat2, lon2) -> np.ndarray:
    try:
        fn = DISTANCES[name]
    except KeyError:
        raise InvalidInput("policy.distance", f"unknown distance {name!r}; one of "
                           f"{sorted(DISTANCES)}") from None
    return fn(lat1, lon1, lat2, lon2)
