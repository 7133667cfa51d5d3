"""TorchXRayVision's DenseNet-121 as a source backbone (architecture from the package, weights
only from a local file).

Seed 000 (``000_3dd3de5c534b555f.txt`` sec. 2, 4 and Table 2) starts from and compares with the
supervised TorchXRayVision chest X-ray model (Cohen et al. 2021, "densenet121-res224-all": 18
pathologies, inputs in [-1024, 1024], see the ``xrv_scale`` transform). The architecture is
``torchxrayvision.models.DenseNet`` built with ``weights=None`` (the package downloads only when
a weight *name* is given, which this module never does). Weights come from a local file through
``create_backbone("xrv_densenet121", weights=PATH)``: a state dict with the package's key names
(``features.*`` and the 18-way ``classifier.*``, kept so that the source model's logits stay
available; ``forward`` returns the embedding). The package's release files are pickled whole
models; turn one into a state dict once with :func:`convert_release_weights` (it unpickles, so
only use it on a file you trust). A missing file is a
:class:`~medxfer.errors.MedxferInputError` naming the path.

[0] TorchXRayVision, 2021, https://arxiv.org/abs/2111.00595
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medxfer.errors import MedxferInputError

#: The package's number of outputs of its all-datasets model (the classifier we drop).
N_PATHOLOGIES = 18


class XRVDenseNet(nn.Module):
    """TorchXRayVision DenseNet-121 features: (B, in_chans, H, W) -> (B, 1024).

    The pooled embedding is the package's ``features2`` (ReLU, global average pooling). Keys
    are the package's (``features.*``, ``classifier.*``); ``classifier`` (18 pathologies) is
    not used by ``forward`` and ``source_logits`` gives its output.

    Args:
        in_chans: Input channels (the package's models are grey: 1).
    """

    def __init__(self, in_chans: int = 1):
        super().__init__()
        import torchxrayvision as xrv

        net = xrv.models.DenseNet(weights=None, in_channels=in_chans, num_classes=N_PATHOLOGIES)
        self.features, self.classifier = net.features, net.classifier
        self.embed_dim = int(net.classifier.in_features)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.features(x))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def source_logits(self, x: Tensor) -> Tensor:
        """The package's 18 pathology logits (no sigmoid). Shape: (B, 18)."""
        return self.classifier(self(x))


def convert_release_weights(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write the state dict of a TorchXRayVision release file (a pickled model) to ``dst``.

    The result loads with ``create_backbone("xrv_densenet121", weights=dst)``: ``features.*``
    and ``classifier.*`` are kept, the operating-point buffer is dropped. Unpickling runs code
    from the file: use it only on files from a source you trust.

    Raises:
        MedxferInputError: ``src`` missing or not a TorchXRayVision DenseNet.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise MedxferInputError("TorchXRayVision weight file not found; weights are never "
                                "downloaded: copy the release .pt there first", path=str(src),
                                field="weights")
    try:
        obj = torch.load(src, map_location="cpu", weights_only=False)
        state = obj.state_dict() if isinstance(obj, nn.Module) else dict(obj)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad input file
        raise MedxferInputError(f"cannot read TorchXRayVision weights ({exc})", path=str(src),
                                field="weights") from exc
    keep = {k: v for k, v in state.items() if k.startswith(("features.", "classifier."))}
    if not keep:
        raise MedxferInputError("no 'features.*' keys: not a TorchXRayVision DenseNet",
                                path=str(src), field="weights")
    torch.save(keep, dst)
    return dst
