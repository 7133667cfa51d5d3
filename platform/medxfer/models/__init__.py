"""Model parts the methods compose: backbones, heads, the DCE shallow U-Net.

No Ray or MLflow imports; no downloads (weights only from local files).
"""

from medxfer.models.backbones import (BackboneInfo, TinyCNN, backbone_info, create_backbone,
                                      list_backbones, load_weights, register_backbone)
from medxfer.models.heads import LinearClassifier, ProjectionHead, SwaVPrototypes
from medxfer.models.unet import ShallowUNet

__all__ = ["BackboneInfo", "LinearClassifier", "ProjectionHead", "ShallowUNet", "SwaVPrototypes",
           "TinyCNN", "backbone_info", "create_backbone", "list_backbones", "load_weights",
           "register_backbone"]
