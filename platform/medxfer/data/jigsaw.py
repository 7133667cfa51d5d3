"""PIRL's jigsaw transform: nine shuffled tiles of an image.

Misra & van der Maaten 2020 sec. 4.1 (after Noroozi & Favaro 2016): the image is divided into
a 3 x 3 grid; from each cell a random tile of side ``tile_frac`` of the cell is cut (64 of 75 px
in the paper: the gaps keep the network from solving the task by matching edges), and the
tiles are put in a random order. The network embeds each tile and concatenates the embeddings
in that order (:class:`medxfer.models.JigsawHead`).

[0] PIRL, 2020, https://arxiv.org/abs/1912.01991
"""

from __future__ import annotations

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from medxfer.data.transforms import Transform, register_transform


@register_transform("jigsaw", random=True,
                    reference="PIRL (Misra & van der Maaten 2020), sec. 3: jigsaw tiles")
class Jigsaw(Transform):
    """(C, H, W) -> tiles (grid**2, C, t, t) in a random order.

    Args:
        grid: Cells per side (3).
        tile_frac: Tile side / cell side (64 / 75).
        tile_size: Resize every tile to this side (None: keep ``floor(cell * tile_frac)``).
    """

    def __init__(self, grid: int = 3, tile_frac: float = 64 / 75, tile_size: int | None = None):
        if grid < 2 or not 0 < tile_frac <= 1:
            raise ValueError(f"need grid >= 2 and 0 < tile_frac <= 1, got {grid}, {tile_frac}")
        self.grid, self.tile_frac, self.tile_size = int(grid), float(tile_frac), tile_size

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        h, w = x.shape[-2:]
        ch, cw = h // self.grid, w // self.grid
        t = max(1, int(min(ch, cw) * self.tile_frac))
        tiles = []
        for r in range(self.grid):
            for c in range(self.grid):
                dy = int(torch.randint(0, ch - t + 1, (), generator=generator))
                dx = int(torch.randint(0, cw - t + 1, (), generator=generator))
                tile = x[..., r * ch + dy:r * ch + dy + t, c * cw + dx:c * cw + dx + t]
                if self.tile_size is not None and self.tile_size != t:
                    tile = TF.resize(tile, [self.tile_size, self.tile_size], antialias=True)
                tiles.append(tile)
        order = torch.randperm(len(tiles), generator=generator)
        return torch.stack(tiles)[order]
