"""Task metrics (``metrics``: AUC, accuracy, F1, mAP, Dice), OOD protocols, saliency, domain gap."""
