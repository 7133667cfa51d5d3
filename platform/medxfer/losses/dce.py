"""Deep contrast enhancement (DCE) losses: LE-curve, adaptive, local and region conflict.

Seed 000 (``000_3dd3de5c534b555f.txt``) sec. 3.1. X is the input image normalised to
[-1, 1], A the per-pixel alpha map of the shallow U-Net and Y = LE(X; A) the enhanced image.

* eq. 1  LE(I; alpha) = y_shift + tanh(alpha * (I + x_shift))               (:func:`le_curve`)
* eq. 2-4 L_adapt = ||A - TS * G(X; mu, theta)||^2 / (2 B C W H), G a Gaussian of the pixel
  value whose mean is the 3rd of the 5 sorted k-means centres of the image and whose width
  comes from the 2nd and 4th centres                                        (:func:`adaptive_loss`)
* eq. 5  L_lcl = sum_i sum_{j in 4-nbhd(i)} (Y_i > Y_j xor X_i > X_j) / (4 B C W H)
  exact count: :func:`local_conflict_fraction` (metric, no gradient);
  training surrogate: :func:`local_conflict_loss` (sigmoid-relaxed Y comparison)
* eq. 6-8 L_rcl = ||G_FX - G_FY||^2 / (4 N^2 M^2), FX the k x k squares of X flattened to rows,
  G_F = F F^T                                                         (:func:`region_conflict_loss`)

Interpretation choices (the seed is ambiguous; see each function):

* theta (eq. 4) is min(c3 - c2, c4 - c3), the distance from the mean centre c3 to its nearer
  neighbour centre (the literal Min(c2, c4) of two sorted centre *values* is always c2 and
  can be negative on [-1, 1]). Eq. 4 builds theta from centre positions, so it is a distance
  in intensity units, and by default (``theta_mode="distance"``) it is the Gaussian's width:
  G = exp(-(X - mu)^2 / (2 theta^2)). The sentence after eq. 4 calls it "the variance";
  ``theta_mode="variance"`` reproduces that reading, G = exp(-(X - mu)^2 / (2 theta)).
* N = M = k^2 (the width of FX and FY, as the text defines them); the region loss is
  averaged over the B*C images.

The defaults of the transformation strength TS and the square size k live here
(:data:`DEFAULT_STRENGTH`, :data:`DEFAULT_KERNEL_SIZE`, :data:`DEFAULT_THETA_MODE`), one place
for the loss and the ``dce`` method; the seed gives no values for them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_EPS = 1e-6
#: Transformation strength TS of eq. 2 (> 1 lets the LE-curve steepen the middle band).
DEFAULT_STRENGTH = 3.0
#: Square size k of eq. 7-8 (4 keeps 7 x 7 squares on a 28 px image).
DEFAULT_KERNEL_SIZE = 4
#: How theta of eq. 4 enters the Gaussian: ``"distance"`` (a width) or ``"variance"``.
DEFAULT_THETA_MODE = "distance"
THETA_MODES = ("distance", "variance")


def le_curve(image: Tensor, alpha_map: Tensor, x_shift: float = 0.0,
             y_shift: float = 0.0) -> Tensor:
    """Lung-enhancement curve (eq. 1): ``y_shift + tanh(alpha * (I + x_shift))``.

    Args:
        image: I in [-1, 1]. Shape: (B, C, H, W).
        alpha_map: Per-pixel alpha A, broadcastable to ``image``.
        x_shift: Input shift.
        y_shift: Output shift.
    """
    return y_shift + torch.tanh(alpha_map * (image + x_shift))


@torch.no_grad()
def kmeans_1d(values: Tensor, k: int = 5, n_iters: int = 20) -> Tensor:
    """Deterministic batched Lloyd k-means on scalars (pixel intensities), one per row.

    Initialised at the (i + 0.5)/k quantiles of each row, so the result depends only on the
    data; an empty cluster keeps its previous centre.

    Args:
        values: Shape (B, P), P values per row.
        k: Number of clusters.
        n_iters: Lloyd iterations.

    Returns:
        Sorted centres. Shape: (B, k).
    """
    values = values.float()
    # Quantile initialisation by sorting (torch.quantile refuses inputs over 16M elements).
    n = values.shape[1]
    idx = ((torch.arange(k, device=values.device) + 0.5) / k * (n - 1)).round().long()
    centres = values.sort(dim=1).values[:, idx].contiguous()  # (B, k)
    for _ in range(n_iters):
        assign = (values[:, :, None] - centres[:, None, :]).abs().argmin(dim=2)  # (B, P)
        onehot = F.one_hot(assign, k).to(values.dtype)  # (B, P, k)
        counts = onehot.sum(dim=1)
        sums = (onehot * values[:, :, None]).sum(dim=1)
        centres = torch.where(counts > 0, sums / counts.clamp(min=1), centres)
    return centres.sort(dim=1).values


def _check_theta_mode(theta_mode: str) -> None:
    if theta_mode not in THETA_MODES:
        raise ValueError(f"theta_mode must be one of {list(THETA_MODES)}, got {theta_mode!r}.")


@torch.no_grad()
def adaptive_target(image: Tensor, strength: float = DEFAULT_STRENGTH, n_iters: int = 20,
                    theta_mode: str = DEFAULT_THETA_MODE) -> Tensor:
    """The adaptive target TS * G(X; mu, theta) of eq. 2-4, per image.

    k-means with 5 clusters on each image's pixels (all channels), centres sorted c1..c5;
    mu = c3 (eq. 3: "the third cluster center as the mean"); theta = min(c3 - c2, c4 - c3)
    (eq. 4, see the module note). G = exp(-(X - mu)^2 / (2 theta^2)) with
    ``theta_mode="distance"`` (theta a width), exp(-(X - mu)^2 / (2 theta)) with
    ``"variance"``; either way the target peaks at TS where a pixel equals c3 (the "lesion"
    band between lung background and soft tissue).

    Args:
        image: X in [-1, 1]. Shape: (B, C, H, W).
        strength: Transformation strength TS (the peak alpha).
        theta_mode: ``"distance"`` or ``"variance"``.

    Returns:
        Target alpha map. Shape: (B, C, H, W).
    """
    _check_theta_mode(theta_mode)
    b = image.shape[0]
    c = kmeans_1d(image.reshape(b, -1), 5, n_iters)
    mu = c[:, 2]
    theta = torch.minimum(c[:, 2] - c[:, 1], c[:, 3] - c[:, 2]).clamp(min=_EPS)
    mu, theta = mu.view(b, 1, 1, 1), theta.view(b, 1, 1, 1)
    variance = theta ** 2 if theta_mode == "distance" else theta
    return strength * torch.exp(-(image - mu) ** 2 / (2 * variance))


def adaptive_loss(alpha_map: Tensor, image: Tensor, strength: float = DEFAULT_STRENGTH,
                  target: Tensor | None = None, theta_mode: str = DEFAULT_THETA_MODE) -> Tensor:
    """L_adapt (eq. 2) = ||A - TS G(X)||^2 / (2 B C W H).

    Args:
        alpha_map: A. Shape: (B, C, H, W).
        image: X. Shape: (B, C, H, W).
        strength: TS.
        target: Precomputed :func:`adaptive_target` (it depends on X only).
        theta_mode: How theta enters G (:func:`adaptive_target`).
    """
    if target is None:
        target = adaptive_target(image, strength, theta_mode=theta_mode)
    return ((alpha_map - target) ** 2).sum() / (2 * alpha_map.numel())


def _neighbour_pairs(t: Tensor) -> list[tuple[Tensor, Tensor]]:
    """(t_i, t_j) for the 4 ordered neighbour directions (down, up, right, left)."""
    return [(t[..., :-1, :], t[..., 1:, :]), (t[..., 1:, :], t[..., :-1, :]),
            (t[..., :, :-1], t[..., :, 1:]), (t[..., :, 1:], t[..., :, :-1])]


@torch.no_grad()
def local_conflict_fraction(original: Tensor, enhanced: Tensor) -> Tensor:
    """Exact local conflict (eq. 5), a *metric*: not differentiable.

    Counts ordered pairs (i, j), j one of the 4 neighbours of i inside the image, where
    (Y_i > Y_j) xor (X_i > X_j), divided by 4 B C W H (border pixels have fewer neighbours,
    as in the equation's denominator).

    Args:
        original: X. Shape: (B, C, H, W).
        enhanced: Y. Shape: (B, C, H, W).

    Returns:
        Scalar fraction in [0, 1).
    """
    flips = sum(((yi > yj) ^ (xi > xj)).sum()
                for (xi, xj), (yi, yj) in zip(_neighbour_pairs(original),
                                              _neighbour_pairs(enhanced)))
    return flips.double() / (4 * original.numel())


def local_conflict_loss(original: Tensor, enhanced: Tensor, sharpness: float = 0.01) -> Tensor:
    """Differentiable surrogate of eq. 5, the one to *train* with.

    The hard test Y_i > Y_j is replaced by sigmoid((Y_i - Y_j) / sharpness); the X side is
    fixed data and stays exact. xor(a, b) = a (1 - b) + b (1 - a) for b in {0, 1}. As
    ``sharpness`` -> 0 this tends to :func:`local_conflict_fraction` (for untied Y).

    Args:
        original: X. Shape: (B, C, H, W).
        enhanced: Y. Shape: (B, C, H, W).
        sharpness: Temperature of the sigmoid, in intensity units.
    """
    total = enhanced.new_zeros(())
    for (xi, xj), (yi, yj) in zip(_neighbour_pairs(original), _neighbour_pairs(enhanced)):
        a = torch.sigmoid((yi - yj) / sharpness)
        bx = (xi > xj).to(enhanced.dtype)
        total = total + (a * (1 - bx) + bx * (1 - a)).sum()
    return total / (4 * original.numel())


def square_flatten(image: Tensor, kernel_size: int) -> Tensor:
    """SquareFlatten (eq. 7-8): each non-overlapping k x k square becomes one row.

    Rows/columns beyond the last full square are dropped.

    Args:
        image: Shape (B, C, H, W).
        kernel_size: k.

    Returns:
        Shape (B * C, T, k * k), T = (H // k) * (W // k) squares per image and channel.
    """
    b, c, h, w = image.shape
    if h < kernel_size or w < kernel_size:
        raise ValueError(f"kernel_size {kernel_size} exceeds the image size {h}x{w}.")
    patches = F.unfold(image.reshape(b * c, 1, h, w), kernel_size, stride=kernel_size)
    return patches.transpose(1, 2)  # (B*C, T, k*k)


def region_conflict_loss(original: Tensor, enhanced: Tensor,
                         kernel_size: int = DEFAULT_KERNEL_SIZE) -> Tensor:
    """L_rcl (eq. 6): ||G_FX - G_FY||^2 / (4 N^2 M^2) with G_F = F F^T (T x T).

    N = M = k^2, the width of FX and FY as the seed defines them; averaged over the B*C
    images (the seed does not say how the batch enters).

    Args:
        original: X. Shape: (B, C, H, W).
        enhanced: Y. Shape: (B, C, H, W).
        kernel_size: k.
    """
    fx, fy = square_flatten(original, kernel_size), square_flatten(enhanced, kernel_size)
    gx, gy = fx @ fx.transpose(1, 2), fy @ fy.transpose(1, 2)
    n = m = kernel_size * kernel_size
    return ((gx - gy) ** 2).sum(dim=(1, 2)).mean() / (4 * n * n * m * m)


class DCELoss(nn.Module):
    """Total DCE loss: w_adapt L_adapt + w_lcl L_lcl(surrogate) + w_rcl L_rcl.

    ``forward(image, alpha_map)`` applies the LE-curve itself and returns the weighted sum;
    ``parts`` returns every term plus the exact local-conflict fraction (``lcl_exact``,
    a metric to report, never back-propagated).

    Args:
        w_adapt, w_lcl, w_rcl: Term weights.
        strength: Transformation strength TS of eq. 2.
        x_shift, y_shift: LE-curve shifts (eq. 1).
        kernel_size: Square size k of eq. 7-8.
        sharpness: Sigmoid temperature of the local-conflict surrogate.
        theta_mode: How theta of eq. 4 enters the Gaussian (``"distance"``: its width, the
            default; ``"variance"``).
    """

    def __init__(self, w_adapt: float = 1.0, w_lcl: float = 1.0, w_rcl: float = 1.0,
                 strength: float = DEFAULT_STRENGTH, x_shift: float = 0.0, y_shift: float = 0.0,
                 kernel_size: int = DEFAULT_KERNEL_SIZE, sharpness: float = 0.01,
                 theta_mode: str = DEFAULT_THETA_MODE):
        super().__init__()
        if kernel_size < 1 or sharpness <= 0:
            raise ValueError(f"kernel_size must be >= 1 and sharpness > 0, got {kernel_size}, "
                             f"{sharpness}.")
        _check_theta_mode(theta_mode)
        self.theta_mode = theta_mode
        self.w_adapt, self.w_lcl, self.w_rcl = float(w_adapt), float(w_lcl), float(w_rcl)
        self.strength, self.x_shift, self.y_shift = float(strength), float(x_shift), float(y_shift)
        self.kernel_size, self.sharpness = int(kernel_size), float(sharpness)

    def parts(self, image: Tensor, alpha_map: Tensor) -> dict[str, Tensor]:
        """All terms: ``adapt, lcl, rcl, total, lcl_exact`` and the enhanced image ``enhanced``.

        Args:
            image: X in [-1, 1]. Shape: (B, C, H, W).
            alpha_map: A. Shape: (B, C, H, W) (or broadcastable, e.g. (B, 1, H, W)).
        """
        alpha_map = alpha_map.expand_as(image)
        y = le_curve(image, alpha_map, self.x_shift, self.y_shift)
        out = {
            "adapt": adaptive_loss(alpha_map, image, self.strength, theta_mode=self.theta_mode),
            "lcl": local_conflict_loss(image, y, self.sharpness),
            "rcl": region_conflict_loss(image, y, self.kernel_size),
        }
        out["total"] = (self.w_adapt * out["adapt"] + self.w_lcl * out["lcl"]
                        + self.w_rcl * out["rcl"])
        out["lcl_exact"] = local_conflict_fraction(image, y)
        out["enhanced"] = y
        return out

    def forward(self, image: Tensor, alpha_map: Tensor) -> Tensor:
        """Weighted total loss (scalar)."""
        return self.parts(image, alpha_map)["total"]
