"""A request's grid (``schemas.Grid``) as the sites the numerics evaluate at (``Sites``)."""

from __future__ import annotations

import numpy as np

from fastlrnr.numerics.sites import Sites
from fastlrnr.server.api.schemas import Grid


def grid_arrays(grid: Grid) -> Sites:
    """Grid request → float64 sites. Uniform: x_j = 2πj/nx, t = linspace(0, 1, nt)."""
    if grid.kind == "uniform":
        return Sites.uniform(grid.nx, grid.nt)
    if grid.kind == "axes":
        return Sites.axes(grid.x, grid.t)
    pts = np.asarray(grid.points, np.float64).reshape(-1, 2)
    return Sites.points(pts[:, 0], pts[:, 1])
