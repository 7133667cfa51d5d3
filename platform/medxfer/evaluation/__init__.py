"""Task metrics (``metrics``: AUC, accuracy, F1, mAP, Dice) and the pure math of the analyses:
saliency hit rate (``hit_rate``), domain gap (``domain_gap``), layer CCA (``cca``), prediction
similarity (``prediction_similarity``), radial spectra (``spectrum``) and shortcut-study curves
(``shortcut``: mean with 95 % CI over folds, permutation test between sources). No Ray or
MLflow."""
