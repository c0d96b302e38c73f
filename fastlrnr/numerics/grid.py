"""The standard grid's size, as plain numbers (no numpy: the client imports this module).

``STANDARD_NX`` × ``STANDARD_NT`` is the grid of ``fastlrnr.numerics.pde.standard_grid`` (x_j = 2πj/nx,
t = linspace(0, 1, nt)), the service's default grid, the one it warms every model on, and the
one the client assumes when a request names no grid.
"""

from __future__ import annotations

STANDARD_NX: int = 256
STANDARD_NT: int = 100
