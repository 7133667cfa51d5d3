"""The MLflow run schema shared by every writer and reader (DESIGN.md).

Every module that writes or reads medxfer runs uses these names; none spells a tag by hand.
"""

from __future__ import annotations

from typing import Literal

# Tags
KIND = "medxfer.kind"              # trial | import | estimate | sweep | analysis | study | cell
SOURCE = "medxfer.source"          # source dataset of the pre-trained weights
TARGET = "medxfer.target"          # target dataset
ARCH = "medxfer.arch"              # architecture flag ("resnet" = ResNet18)
METHOD = "medxfer.method"          # method registry name ("finetune" for imports)
BENCHMARK = "medxfer.benchmark"    # dataset | architecture
SWEEP = "medxfer.sweep"            # sweep name (trials)
ORIGIN_RUN_ID = "medxfer.origin_run_id"
ORIGIN_STATUS = "medxfer.origin_status"
ORIGIN_FILE = "medxfer.origin_file"
METRIC = "medxfer.metric"          # estimates: transferability metric name
SKIP_REASON = "medxfer.skip_reason"  # estimates: why a metric could not run (no score logged)
BACKBONE = "medxfer.backbone"      # estimates: create_backbone name of the source model
WEIGHTS = "medxfer.weights"        # estimates: the local weight file scored
N_SAMPLES = "medxfer.n_samples"    # estimates: target training-fold images scored
IMAGE_SIZE = "medxfer.image_size"  # estimates: side the model was fed at

KIND_TRIAL = "trial"
KIND_IMPORT = "import"
KIND_ESTIMATE = "estimate"
KIND_SWEEP = "sweep"               # the parent run of a sweep
KIND_ANALYSIS = "analysis"         # a `medxfer analyze` run (experiment analysis/<name>)
KIND_STUDY = "study"               # the parent run of a study (experiment study/<name>)
KIND_CELL = "cell"                 # a study's cell: one trained (or fine-tuned) model
ANALYSIS = "medxfer.analysis"      # analyses: the analysis registry name (saliency, ...)

BENCHMARK_DATASET = "dataset"
BENCHMARK_ARCHITECTURE = "architecture"
BENCHMARK_KINDS = (BENCHMARK_DATASET, BENCHMARK_ARCHITECTURE)
BenchmarkKind = Literal["dataset", "architecture"]

# MLflow's own tags
RUN_NAME = "mlflow.runName"
PARENT_RUN_ID = "mlflow.parentRunId"

# Raw architecture flags (DESIGN.md: names are the raw flags throughout)
ARCHITECTURES = (
    "densenet", "efficientnet", "googlenet", "mnasnet", "mobilenet", "vgg", "convnext",
    "shufflenet", "resnet",
)

EXPERIMENT_PREFIXES = ("benchmark", "sweep", "transferability", "analysis", "study")


def experiment_name(kind: str, name: str) -> str:
    """``<kind>/<name>`` for a kind of :data:`EXPERIMENT_PREFIXES` (``sweep/<name>``, ...)."""
    if kind not in EXPERIMENT_PREFIXES:
        raise ValueError(f"experiment kind {kind!r}: expected one of "
                         f"{', '.join(EXPERIMENT_PREFIXES)}")
    if not name or "/" in name:
        raise ValueError(f"experiment name {name!r}: expected a non-empty name without '/'")
    return f"{kind}/{name}"


def row_key(benchmark: str) -> str:
    """The tag that names a ground-truth table's rows: source (dataset) or arch (architecture)."""
    if benchmark == BENCHMARK_DATASET:
        return SOURCE
    if benchmark == BENCHMARK_ARCHITECTURE:
        return ARCH
    raise ValueError(f"benchmark {benchmark!r}: expected one of {', '.join(BENCHMARK_KINDS)}")

# Sweeps (medxfer.tune): a trial's child run is keyed by its Tune trial id, so a resumed sweep
# reuses it; the parent records the sweep's result.
TRIAL_ID = "medxfer.trial_id"              # Tune trial id of a child run
LAST_STEP = "medxfer.last_step"            # highest step logged (resume skips repeats)
SELECTED_STEP = "medxfer.selected_step"    # epoch whose metrics the final step repeats
BEST_RUN_ID = "medxfer.best_run_id"        # parent: the selected child run
BEST_TRIAL_ID = "medxfer.best_trial_id"
NODE_ID = "medxfer.node_id"                # Ray node id of the process that ran the trial
STATUS = "medxfer.status"                  # sweep parent: why it ended early (``stalled``)
STATUS_STALLED = "stalled"                 # the driver's watchdog stopped it (medxfer.tune.stall)
STATUS_REASON = "medxfer.status_reason"    # one line: what the watchdog saw

# Experiment tags the MLflow UI reads. Without a kind, MLflow 3 opens an experiment in its GenAI
# view (traces), where a sweep's runs do not show; ``custom_model_development`` opens the runs.
EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND_TRAINING = "custom_model_development"
PRIMARY_METRIC = "mlflow.experiment.primaryMetric.name"   # the UI charts it first

# Studies (medxfer study): the parent (kind study) and its cells (kind cell) and search trials
# (kind trial) in experiment study/<name>. A cell's run is keyed by its cell key, so a resumed
# study reuses it whatever Tune trial runs the cell.
STUDY = "medxfer.study"                    # study name (parent, cells, search trials)
CELL_KEY = "medxfer.cell.key"              # the cell's coordinates as one string
CELL_ROW = "medxfer.cell.row"              # the study's method row (table row)
CELL_PHASE = "medxfer.cell.phase"          # train | transfer | search
CELL_FOLD = "medxfer.cell.fold"
CELL_FRACTION = "medxfer.cell.fraction"
CELL_N_LABELLED = "medxfer.cell.n_labelled"
CELL_TEST_SET = "medxfer.cell.test_set"
CELL_SEED = "medxfer.cell.seed"
CELL_P_ART = "medxfer.cell.p_art"          # shortcut studies: share of the class confounded
CELL_SEARCH_RUN = "medxfer.cell.search_run_id"  # the search trial whose configuration a cell ran
