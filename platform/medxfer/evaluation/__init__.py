"""Task metrics (``metrics``: AUC, accuracy, F1, mAP, Dice) and the pure math of the analyses:
saliency hit rate (``hit_rate``), domain gap (``domain_gap``), layer CCA (``cca``), prediction
similarity (``prediction_similarity``) and radial spectra (``spectrum``). No Ray or MLflow."""
