"""MAE on a tiny timm ViT, PIRL's jigsaw head, and the two new backbones."""

import pytest
import torch

from medxfer.losses import mae_loss
from medxfer.models import JigsawHead, MaskedAutoencoder, create_backbone, tiny_vit
from medxfer.models.mae import MAEEncoder


def test_mae_shapes_and_masked_pixels_do_not_reach_the_encoder():
    torch.manual_seed(0)
    mae = MaskedAutoencoder(tiny_vit(1, 32)).eval()
    x = torch.rand(2, 1, 32, 32)
    pred, target, mask = mae(x, torch.Generator().manual_seed(1))
    assert pred.shape == target.shape == (2, 64, 16) and mask.sum(1).tolist() == [48, 48]
    # Encoder output depends on the visible patches only.
    keep = (~mask[0]).nonzero().flatten()[None]
    y = x[:1].clone()
    enc = mae.encoder
    tokens = enc(y, keep)
    patches = y.unfold(2, 4, 4).unfold(3, 4, 4).reshape(1, 1, 64, 16)
    patches[:, :, mask[0]] = 9.0
    y2 = patches.reshape(1, 1, 8, 8, 4, 4).permute(0, 1, 2, 4, 3, 5).reshape(1, 1, 32, 32)
    assert torch.allclose(enc(y2, keep), tokens, atol=1e-6)
    assert isinstance(enc, MAEEncoder) and tokens.shape == (1, 17, 64)


def test_mae_loss_falls_and_encoder_loads_as_backbone(tmp_path):
    torch.manual_seed(0)
    vit = tiny_vit(1, 32)
    mae = MaskedAutoencoder(vit)
    opt = torch.optim.Adam(mae.parameters(), lr=3e-3)
    x = torch.rand(4, 1, 28, 28).round()  # 28 px works: the ViT resamples its positions
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(15):
        loss = mae_loss(*mae(x, g))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-3:]) < 0.7 * sum(losses[:3])
    torch.save(vit.state_dict(), tmp_path / "encoder.pt")
    backbone = create_backbone("vit_tiny_p4", in_chans=1, weights=tmp_path / "encoder.pt")
    assert torch.equal(backbone.pos_embed, vit.pos_embed)
    assert backbone(x).shape == (4, 64)


def test_jigsaw_head_depends_on_tile_order():
    torch.manual_seed(0)
    head = JigsawHead(in_dim=5, tile_dim=4, out_dim=3)
    t = torch.randn(2, 9, 5)
    out = head(t)
    assert out.shape == (2, 3)
    assert not torch.allclose(out, head(t[:, torch.randperm(9)]))
    with pytest.raises(ValueError, match=r"\(B, 9, in_dim\)"):
        head(t[:, :8])


def test_xrv_densenet_backbone_local_weights_only(tmp_path):
    from medxfer.errors import MedxferInputError
    from medxfer.models.xrv import XRVDenseNet, convert_release_weights

    torch.manual_seed(0)
    model = create_backbone("xrv_densenet121", in_chans=1)
    assert isinstance(model, XRVDenseNet) and model.embed_dim == 1024
    assert model(torch.rand(2, 1, 64, 64)).shape == (2, 1024)
    assert model.source_logits(torch.rand(1, 1, 64, 64)).shape == (1, 18)
    import torchxrayvision as xrv

    release = xrv.models.DenseNet(weights=None)  # what a release file pickles, whole
    torch.save(release, tmp_path / "release.pt")
    convert_release_weights(tmp_path / "release.pt", tmp_path / "xrv.pt")
    loaded = create_backbone("xrv_densenet121", in_chans=1, weights=tmp_path / "xrv.pt")
    assert torch.equal(loaded.features.conv0.weight, release.features.conv0.weight)
    with pytest.raises(MedxferInputError, match="nowhere.pt"):
        create_backbone("xrv_densenet121", weights=tmp_path / "nowhere.pt")
