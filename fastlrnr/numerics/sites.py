"""The sites an answer is asked at: a uniform grid, a tensor grid of axes, or a list of points.

Every rung of an answer (``fastlrnr.numerics.ladder``) evaluates at the same ``Sites``; the server
builds them from a request's grid, the numerics never see the request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.grid import X_PERIOD, uniform_grid


@dataclass(frozen=True)
class Sites:
    """The evaluation sites of a request: axes (``uniform``/``axes``) or point lists (``points``).
    Build them with ``uniform``, ``axes`` or ``points``.

    ``x``/``t`` are as requested (reported back); ``x_eval`` is x reduced to [0, 2π) in float64
    (the problem is periodic), so that no finite x overflows or loses its phase in float32."""

    kind: str
    x: np.ndarray
    t: np.ndarray
    key: tuple  # hashable description, equal for grids that evaluate identically

    @property
    def x_eval(self) -> np.ndarray:
        return np.mod(self.x, X_PERIOD)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.t.size, self.x.size) if self.kind != "points" else (self.x.size,)

    @property
    def sites(self) -> int:
        """Field values per row."""
        return self.x.size if self.kind == "points" else self.x.size * self.t.size

    def part(self, sl: slice) -> Sites:
        """The sites ``sl`` of a point list, or the times ``sl`` of axes (a sweep row split by sites)."""
        if self.kind == "points":
            x, t = self.x[sl], self.t[sl]
        else:
            x, t = self.x, self.t[sl]
        return Sites("points" if self.kind == "points" else "axes", x, t, (*self.key, "part", sl.start, sl.stop))

    @classmethod
    def uniform(cls, nx: int, nt: int) -> Sites:
        """x_j = 2πj/nx (j < nx), t = linspace(0, 1, nt)."""
        return cls("uniform", *uniform_grid(nx, nt), ("uniform", int(nx), int(nt)))

    @classmethod
    def axes(cls, x, t) -> Sites:
        """The tensor grid of axes x (nx,) and t (nt,)."""
        x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
        return cls("axes", x, t, ("axes", x.tobytes(), t.tobytes()))

    @classmethod
    def points(cls, x, t) -> Sites:
        """The points (x_p, t_p), x and t (P,)."""
        x, t = np.ascontiguousarray(x, np.float64), np.ascontiguousarray(t, np.float64)
        return cls("points", x, t, ("points", x.tobytes(), t.tobytes()))
