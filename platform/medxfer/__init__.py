"""medxfer: medical-imaging transfer-learning research platform.

Three jobs share one MLflow store (see ``shared/DESIGN.md``):

* sweeps of pretraining / fine-tuning methods on Ray Tune,
* the transfer benchmark held in MLflow (imported or produced by sweeps),
* transferability estimation evaluated against that benchmark.
"""

__version__ = "0.1.0"
