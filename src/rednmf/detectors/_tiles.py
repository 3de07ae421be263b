"""Tiles of a scene for the deep detectors: windows with a halo, within a memory budget.

A deep detector whose network would hold more than :data:`WHOLE_SCENE_VALUES`
working values (float32 activations, gradients) over the whole scene trains
and infers a tile at a time instead. Each tile is a *core* (the pixels it
answers for) inside a *window* (the core and a halo of ``halo`` pixels on
each side, clipped to the scene), of at most :data:`TILE_VALUES` working
values. With a halo at least the network's receptive radius, the network's
output on the core is the whole-scene output, so a loss that is a sum over
pixels, summed over the tiles' cores, has the whole-scene gradient (up to
float rounding). Below the budget the scene is one tile, the whole scene, and
the detectors run as they did before tiling (the same arithmetic).

The cores are aligned to ``align`` pixels from the scene's origin (the
coarsest pooling of a multiscale network), so every window starts on the same
pooling grid as the scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["TILE_VALUES", "WHOLE_SCENE_VALUES", "Tile", "plan_tiles"]

#: A scene whose network holds at most this many working values runs whole:
#: 2**28 float32 values, 1 GiB. Every scene of the paper does (the largest,
#: 150 x 150 x 188, needs about 137 M values in BSDM and 46 M in MSNet).
WHOLE_SCENE_VALUES = 2**28
#: Otherwise, each tile's window holds at most this many working values
#: (2**25 float32 values, 128 MiB), the halo included, unless one aligned core
#: with its halo is larger.
TILE_VALUES = 2**25


@dataclass(frozen=True)
class Tile:
    """One window of a ``shape = (rows, cols)`` scene and the core it answers for.

    ``rows`` and ``cols`` are the window (scene coordinates); ``core_rows`` and
    ``core_cols`` the core, also in scene coordinates.
    """

    shape: tuple[int, int]
    rows: tuple[int, int]
    cols: tuple[int, int]
    core_rows: tuple[int, int]
    core_cols: tuple[int, int]

    @property
    def whole(self) -> bool:
        """Whether the core (and so the window) is the whole scene: the only tile."""
        return self.core_rows == (0, self.shape[0]) and self.core_cols == (0, self.shape[1])

    @property
    def window(self) -> tuple[slice, slice]:
        """The window as slices of the scene."""
        return slice(*self.rows), slice(*self.cols)

    @property
    def core(self) -> tuple[slice, slice]:
        """The core as slices of the scene."""
        return slice(*self.core_rows), slice(*self.core_cols)

    @property
    def core_in_window(self) -> tuple[slice, slice]:
        """The core as slices of the window."""
        (r0, _), (c0, _) = self.rows, self.cols
        (a, b), (c, d) = self.core_rows, self.core_cols
        return slice(a - r0, b - r0), slice(c - c0, d - c0)


def plan_tiles(
    shape: tuple[int, int],
    per_pixel: int,
    *,
    halo: int = 0,
    align: int = 1,
    whole_values: int | None = None,
    tile_values: int | None = None,
) -> list[Tile]:
    """The tiles of a ``shape`` scene whose network holds ``per_pixel`` values per pixel.

    One tile, the whole scene, when ``rows * cols * per_pixel <= whole_values``
    (default :data:`WHOLE_SCENE_VALUES`). Otherwise cores of full rows (strips)
    when a strip of at least ``align`` rows fits in ``tile_values`` (default
    :data:`TILE_VALUES`) with its halo, else square cores; core sides are
    multiples of ``align`` (the last ones end at the scene's edge) and ``halo``
    must be one too. Tiles are listed row-major; the cores partition the scene.
    """
    rows, cols = shape
    whole_values = WHOLE_SCENE_VALUES if whole_values is None else whole_values
    tile_values = TILE_VALUES if tile_values is None else tile_values
    if halo % align:
        raise ValueError(f"halo {halo} is not a multiple of the alignment {align}")
    if rows * cols * per_pixel <= whole_values:
        return [Tile(shape, (0, rows), (0, cols), (0, rows), (0, cols))]
    area = max(1, tile_values // per_pixel)
    height = (area // cols - 2 * halo) // align * align
    if height >= align:
        width = cols
    else:
        side = max(align, (math.isqrt(area) - 2 * halo) // align * align)
        height = width = side
    tiles = []
    for a in range(0, rows, height):
        b = min(rows, a + height)
        for c in range(0, cols, width):
            d = min(cols, c + width)
            window_rows = (max(0, a - halo), min(rows, b + halo))
            window_cols = (max(0, c - halo), min(cols, d + halo))
            tiles.append(Tile(shape, window_rows, window_cols, (a, b), (c, d)))
    return tiles
