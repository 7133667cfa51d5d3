"""PIRL's two heads: f for the image, g for its jigsaw tiles.

Misra & van der Maaten 2020 sec. 3.3 and 4.1: both heads sit on one shared encoder (ResNet,
features after global pooling). f(v_I) is a linear projection of the image's embedding to 128-d.
g(v_{I^t}) embeds each of the nine jigsaw tiles separately with the same encoder, projects each
tile linearly to 128-d, concatenates the nine projections *in the (random) order the tiles
arrive* and maps the 9 x 128 vector linearly to 128-d. Both outputs are L2-normalised by the
loss (:mod:`medxfer.losses.pirl`).

[0] PIRL, 2020, https://arxiv.org/abs/1912.01991
"""

from __future__ import annotations

from torch import Tensor, nn

#: 3 x 3 jigsaw tiles (sec. 4.1).
N_TILES = 9


class JigsawHead(nn.Module):
    """g: per-tile embeddings (B, T, in_dim) -> (B, out_dim), via per-tile projection + concat.

    Args:
        in_dim: The encoder's embedding size.
        tile_dim: Per-tile projection width (paper: 128).
        out_dim: Output width (paper: 128).
        n_tiles: T (paper: 9).
    """

    def __init__(self, in_dim: int, tile_dim: int = 128, out_dim: int = 128,
                 n_tiles: int = N_TILES):
        super().__init__()
        if min(in_dim, tile_dim, out_dim, n_tiles) < 1:
            raise ValueError("in_dim, tile_dim, out_dim and n_tiles must be >= 1, got "
                             f"{in_dim}, {tile_dim}, {out_dim}, {n_tiles}.")
        self.n_tiles = int(n_tiles)
        self.tile_proj = nn.Linear(in_dim, tile_dim)
        self.out = nn.Linear(n_tiles * tile_dim, out_dim)

    def forward(self, tile_embeddings: Tensor) -> Tensor:
        """Args: tile_embeddings (B, T, in_dim), tiles in the order they were shuffled."""
        if tile_embeddings.ndim != 3 or tile_embeddings.shape[1] != self.n_tiles:
            raise ValueError(f"expected (B, {self.n_tiles}, in_dim), got "
                             f"{tuple(tile_embeddings.shape)}.")
        return self.out(self.tile_proj(tile_embeddings).flatten(1))


def embed_tiles(encoder: nn.Module, tiles: Tensor) -> Tensor:
    """Run ``encoder`` on every tile: (B, T, C, h, w) -> (B, T, embed_dim)."""
    b, t = tiles.shape[:2]
    return encoder(tiles.flatten(0, 1)).reshape(b, t, -1)
