"""Model parts the methods compose: backbones, heads, the DCE shallow U-Net, the MAE, PIRL's
jigsaw head, segmentation nets and the SwAV optimisation parts.

No Ray or MLflow imports; no downloads (weights only from local files).
"""

from medxfer.models.backbones import (BackboneInfo, TinyCNN, backbone_info, create_backbone,
                                      list_backbones, load_weights, register_backbone)
from medxfer.models.heads import LinearClassifier, ProjectionHead, SwaVPrototypes
from medxfer.models.mae import MAEDecoder, MAEEncoder, MaskedAutoencoder, tiny_vit
from medxfer.models.pirl import JigsawHead, embed_tiles
from medxfer.models.segmentation import (SegmentationNet, create_segmentation_model,
                                         load_encoder_weights)
from medxfer.models.unet import ShallowUNet

__all__ = ["BackboneInfo", "JigsawHead", "LinearClassifier", "MAEDecoder", "MAEEncoder",
           "MaskedAutoencoder", "ProjectionHead", "SegmentationNet", "ShallowUNet",
           "SwaVPrototypes", "TinyCNN", "backbone_info", "create_backbone",
           "create_segmentation_model", "embed_tiles", "list_backbones", "load_encoder_weights",
           "load_weights", "register_backbone", "tiny_vit"]
