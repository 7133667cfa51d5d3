"""Analyses of models and datasets (issue 13): saliency + hit rate, domain gap, layer CCA +
prediction similarity, spectra. Layer "transferability and analyses": reads models (MLflow runs
or local weights) and data, computes with :mod:`medxfer.evaluation`, writes tables/figures and
one ``analysis`` run per call (:mod:`medxfer.analyses.record`). Registry:
:mod:`medxfer.analyses.registry`; CLI: ``medxfer analyze`` (:mod:`medxfer.cli.analyze`).
"""
