"""swav: online clustering with swapped prediction, per-modality prototypes, hybrid labels.

Seed ``001_a9715376ac5cbd5d.txt`` sec. III, composed from parts:

* eq. 1-3 swapped prediction: two views -> encoder -> projection head -> z (L2-normalised)
  -> scores z^T c_k against trainable prototypes (:class:`~medxfer.models.SwaVPrototypes`,
  renormalised after every optimiser step); codes q by Sinkhorn-Knopp without gradient
  (:func:`~medxfer.losses.sinkhorn`); each view predicts the other's codes at temperature tau.
* eq. 4 multi-modality: ``modalities`` pools further datasets (MedMNIST-layout flags under
  ``data.root``, e.g. several synthetic modalities) with ``data.flag`` as modality 0. Every
  batch holds ``batch_size / M`` samples of each modality (:class:`ModalityGroups`: one item is
  one sample per modality, so any shuffling or sharding keeps the parts equal); the batch is
  laid out modality-major and part m is scored against its own prototypes C_m and gets its own
  Sinkhorn codes.
* eq. 5-7 hybrid: with ``labelled_fraction > 0`` a linear projector g on the encoder features
  predicts the labels of the labelled part of ``data.flag`` (a fixed seeded subset; in a
  study cell with a label fraction or count, that cell's nested labelled rows instead):
  loss = (1/N) sum_k [alpha L_ss(x_k) + 1[k labelled] beta L_sup(g(x_k), y_k)].
* multi-crop (SwAV's form of eq. 1): every image gives ``sum(crops)`` views; codes are
  computed on the ``crops_for_assign`` views only (the large crops) and every other view
  predicts each of them: L = sum_{a in assign} 1/(V-1) sum_{v != a} CE(q_a, p_v)
  (:func:`swapped_prediction`; with two views exactly eq. 1). Views of one size go through the
  encoder together (one BatchNorm batch per resolution).
* the recipe (``recipe``, :mod:`.swav_recipe`): ``seed001`` (default) is Table I and III-C:
  2 + 6 rescale-then-crop views with the III-C augmentations, LARS with warm-up and a cosine
  from 0.6 to 0.0006 per iteration, prototypes frozen for the first 10,000 iterations;
  ``simple`` is two random-resized crops with SGD.
* SwAV practice: an optional feature queue (``queue_length`` > 0, from ``queue_start_epoch``)
  adds the features of previous batches to the Sinkhorn problem when batches are small (codes
  only, no gradient through the queue).

Table I (2D) defaults: tau 0.1, eps 0.03, 3 Sinkhorn iterations, 128-d features, 3000
prototypes, queue 3840 from epoch 10, batch 32, weight decay 1e-6, lr 0.6 (``train.*``
defaults here). It runs as a member of the contrastive family
(:mod:`medxfer.methods.contrastive`) in the shared loop (:mod:`medxfer.methods.loop`):
per-epoch ``train_loss``/``val_loss`` and ``lr`` (the rate of the epoch's first iteration),
checkpoints (with the iteration counter), selection, and ``encoder.pt`` (encoder without head
and prototypes) for ``finetune``/``segment``.

[0] SwAV, 2020, https://arxiv.org/abs/2006.09882
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import Tensor, nn
from torch.utils.data import Dataset

from medxfer.errors import MedxferInputError
from medxfer.methods import contrastive
from medxfer.methods.common import WithPatients
from medxfer.methods.contrastive import ContrastiveOptions, ContrastiveParts, SSLNet
from medxfer.methods.registry import Method, register_method
from medxfer.methods.session import get_session, unwrap
from medxfer.methods.swav_recipe import (IterationSchedule, fill_recipe, iters_per_epoch,
                                         multicrop_views)


class SwaVOptions(ContrastiveOptions):
    """``method_config`` of swav (Table I defaults).

    Attributes:
        temperature: tau of the swapped prediction.
        epsilon: Sinkhorn entropy weight.
        sinkhorn_iterations: Sinkhorn-Knopp iterations.
        n_prototypes: K prototypes per modality.
        modalities: extra dataset flags under ``data.root`` pooled with ``data.flag`` (eq. 4).
        alpha, beta: weights of L_ss and L_sup (eq. 7).
        labelled_fraction: fraction of ``data.flag``'s training images whose labels are used.
        queue_length: features kept per assigned view and modality for the codes (0: none).
        queue_start_epoch: first epoch that fills and uses the queue.
        recipe: ``seed001`` or ``simple`` (:mod:`.swav_recipe`): the values of the fields
            below that the YAML leaves out.
        crops: crops per group (seed 001: [2, 6]).
        crop_sizes: side per group (None: ``data.size``, then the seed's 92/224 of it).
        crop_mode: ``rescale_crop`` (seed 001: rescale, augment, crop last) or
            ``random_resized_crop`` (SwAV: crop by area fraction first).
        crop_scales: per group the rescale factor range (or the area-fraction range).
        crops_for_assign: the views that get codes (the large crops).
        augment: per-crop augmentation without ``data.transforms``: ``medical_ssl`` (III-C)
            or ``basic`` (rotation, flip).
        energy_reference: the eq. 8 reference file (``medxfer data energy-reference``;
            relative to ``data.root``); None: each image's own energies.
        optimizer: ``lars`` or ``train`` (``train.optimizer``).
        lr_schedule: ``warmup_cosine`` (per iteration, from ``train.lr`` to ``final_lr``) or
            ``train`` (``train.scheduler``, per epoch).
        final_lr: the cosine's end.
        warmup_epochs: linear warm-up length, in epochs (counted in iterations).
        freeze_prototypes_iters: iterations at the start during which prototypes do not
            update.
    """

    temperature: float = Field(0.1, gt=0)
    epsilon: float = Field(0.03, gt=0)
    sinkhorn_iterations: int = Field(3, ge=1)
    n_prototypes: int = Field(3000, ge=1)
    modalities: list[str] = Field(default_factory=list)
    alpha: float = Field(1.0, ge=0)
    beta: float = Field(1.0, ge=0)
    labelled_fraction: float = Field(0.0, ge=0, le=1)
    queue_length: int = Field(3840, ge=0)
    queue_start_epoch: int = Field(10, ge=1)
    recipe: Literal["seed001", "simple"] = "seed001"
    crops: list[Annotated[int, Field(ge=1)]] | None = None
    crop_sizes: list[Annotated[int, Field(ge=1)]] | None = None
    crop_mode: Literal["rescale_crop", "random_resized_crop"] | None = None
    crop_scales: list[tuple[float, float]] | None = None
    crops_for_assign: list[Annotated[int, Field(ge=0)]] | None = None
    augment: Literal["medical_ssl", "basic"] | None = None
    energy_reference: str | None = None
    optimizer: Literal["lars", "train"] | None = None
    lr_schedule: Literal["warmup_cosine", "train"] | None = None
    final_lr: float | None = Field(None, ge=0)
    warmup_epochs: float | None = Field(None, ge=0)
    freeze_prototypes_iters: int | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _recipe(cls, data: Any) -> Any:
        return fill_recipe(data)

    @model_validator(mode="after")
    def _views(self):
        if sum(self.crops) < 2 or not set(self.crops_for_assign) <= set(range(sum(self.crops))):
            raise ValueError(f"need >= 2 views and crops_for_assign among them, got crops "
                             f"{self.crops}, crops_for_assign {self.crops_for_assign}")
        if self.crop_sizes is not None and len(self.crop_sizes) != len(self.crops):
            raise ValueError(f"crop_sizes needs one side per crop group, got {self.crop_sizes} "
                             f"for crops {self.crops}")
        return self


DEFAULTS: dict[str, Any] = {"train": {**contrastive.DEFAULTS["train"], "batch_size": 32,
                                      "weight_decay": 1e-6, "lr": 0.6}}


class ModalityGroups(Dataset):
    """The per-modality batch sampler as a dataset: item i is one sample of *each* modality.

    A loader batch of b items therefore holds exactly b samples per modality, whatever the
    shuffling or sharding; :func:`modality_major` lays them out as M equal consecutive parts.
    Smaller datasets are cycled (``i % len``) so an epoch covers the largest one.

    Args:
        datasets: one per modality (modality 0 first), items ``(views, y, ...)``.
        labelled: bool per item of ``datasets[0]``: its label enters L_sup.

    Items: ``(views, y0, labelled0)``, each view of shape (M, C, h, w), ``y0``/``labelled0``
    of modality 0's sample.
    """

    def __init__(self, datasets: list[Dataset], labelled: np.ndarray):
        self.datasets = list(datasets)
        self.labelled = np.asarray(labelled, dtype=bool)

    def __len__(self) -> int:
        return max(len(d) for d in self.datasets)

    def __getitem__(self, i: int):
        items = [d[i % len(d)] for d in self.datasets]
        views = tuple(torch.stack([it[0][k] for it in items]) for k in range(len(items[0][0])))
        i0 = i % len(self.datasets[0])
        return views, items[0][1], torch.as_tensor(bool(self.labelled[i0]))


def modality_major(v: Tensor) -> Tensor:
    """(b, M, C, H, W) -> (M * b, C, H, W): rows [m * b, (m + 1) * b) are modality m."""
    return v.transpose(0, 1).reshape(-1, *v.shape[2:])


def labelled_mask(n: int, fraction: float, seed: int) -> np.ndarray:
    """A fixed, seeded subset of ``round(fraction * n)`` of ``n`` items (bool mask)."""
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n)[: int(round(fraction * n))]] = True
    return mask


class SwaVNet(SSLNet):
    """Encoder + projection head + prototypes (+ the label projector g of eq. 5).

    ``forward(views)``: views a list of (B, C, h_v, w_v), modality-major; one encoder pass
    per run of consecutive views of one size (BatchNorm sees all views of a resolution, as in
    SwAV). Returns ``(z, scores, logits)``: per view the normalised features (B, dim) and
    prototype scores (B, K), and g's logits on view 1's modality-0 rows (or None).
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, prototypes: nn.Module,
                 classifier: nn.Module | None, n_modalities: int):
        super().__init__(encoder, head)
        self.prototypes, self.classifier, self.n_modalities = prototypes, classifier, n_modalities

    def forward(self, views):
        runs, start = [], 0
        for i in range(1, len(views) + 1):  # consecutive views of one size share a pass
            if i == len(views) or views[i].shape[-2:] != views[start].shape[-2:]:
                runs.append(self.encoder(torch.cat(views[start:i])))
                start = i
        feats = torch.cat(runs)
        z = nn.functional.normalize(self.head(feats), dim=1).chunk(len(views))
        scores = [self.prototypes(zv) for zv in z]
        logits = None
        if self.classifier is not None:
            logits = self.classifier(feats[: len(views[0]) // self.n_modalities])
        return list(z), scores, logits


class FeatureQueue(nn.Module):
    """FIFO of past normalised features per view and modality (codes only, no gradient).

    Buffers: ``z`` (V, M, L, dim), ``filled`` (rows in use); checkpointed with the method.
    """

    def __init__(self, n_views: int, n_modalities: int, length: int, dim: int):
        super().__init__()
        self.register_buffer("z", torch.zeros(n_views, n_modalities, length, dim))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, z: list[Tensor]) -> None:
        """Enqueue per view a modality-major (M * b, dim) batch (newest first)."""
        n_mod, length = self.z.shape[1], self.z.shape[2]
        for v, zv in enumerate(z):
            parts = zv.detach().reshape(n_mod, -1, zv.shape[1])[:, :length]
            b = parts.shape[1]
            self.z[v] = torch.cat([parts, self.z[v, :, : length - b]], dim=1)
        self.filled.fill_(min(length, int(self.filled) + b))

    def get(self, view: int, modality: int) -> Tensor:
        return self.z[view, modality, : int(self.filled)]


@torch.no_grad()
def queue_codes(scores: Tensor, queued: list[Tensor], epsilon: float, n_iters: int,
                gather_distributed: bool = False) -> Tensor:
    """Per-modality Sinkhorn codes of a modality-major batch (eq. 4), each modality's problem
    extended by its queued scores; only the batch rows are returned. Shape (B, K)."""
    from medxfer.batch_layout import split_modalities
    from medxfer.losses import sinkhorn

    out = []
    for part, extra in zip(split_modalities(scores.detach(), len(queued)), queued,
                           strict=True):
        q = sinkhorn(torch.cat([part, extra]), epsilon, n_iters, gather_distributed)
        out.append(q[: len(part)])
    return torch.cat(out)


def swapped_prediction(scores: list[Tensor], codes: list[Tensor], temperature: float,
                       assign: list[int] | None = None) -> Tensor:
    """Per sample: sum_{a in assign} 1/(V-1) sum_{v != a} -sum_k q_a log p_v,
    p = softmax(scores / tau); ``codes[i]`` belongs to view ``assign[i]`` (default: views 0
    and 1). With two views: eq. 1, -sum q2 log p1 - sum q1 log p2. Shape (B,)."""
    assign = [0, 1] if assign is None else assign
    log_p = [torch.log_softmax(s / temperature, dim=1) for s in scores]
    total = scores[0].new_zeros(scores[0].shape[0])
    for q, a in zip(codes, assign, strict=True):
        others = [v for v in range(len(scores)) if v != a]
        total = total - sum((q * log_p[v]).sum(1) for v in others) / len(others)
    return total


def _sources(cfg, opts: SwaVOptions) -> tuple[list, Any]:
    """Multi-crop data per modality (:class:`~medxfer.methods.common.MethodData`; modality 0:
    the run's data, a study cell's selection; the others: ``data.root``'s ``modalities`` on
    their own splits), and modality 0's."""
    d = cfg.data
    views = multicrop_views(cfg, opts)
    first = contrastive.view_data(cfg, views)
    if opts.modalities and d.root is None:
        raise MedxferInputError("swav modalities are .npz flags under data.root; this data is a "
                                "manifest", field="method_config.modalities")
    out, chans = [first], first.train.n_channels
    for flag in opts.modalities:
        m = contrastive.view_data(cfg, views, flag)
        if m.train.n_channels != chans:
            raise MedxferInputError(f"swav modality {flag!r} has {m.train.n_channels} channels, "
                                    f"{d.flag!r} has {chans}; set data.as_rgb: true to pool "
                                    "them", field="method_config.modalities")
        out.append(m)
    return out, first


def build_optimizer(net: nn.Module, opts: SwaVOptions, t) -> torch.optim.Optimizer:
    """LARS (seed 001, :func:`medxfer.models.optim.build_lars`) or ``train.optimizer``."""
    from medxfer.methods.common import build_optimizer as from_train
    from medxfer.models.optim import build_lars

    params = [p for p in net.parameters() if p.requires_grad]
    if opts.optimizer == "lars":
        return build_lars(params, t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    return from_train(params, t)


def build_parts(cfg, opts: SwaVOptions, chans: int) -> ContrastiveParts:
    from medxfer.losses import SwaVHybridLoss
    from medxfer.models import ProjectionHead, SwaVPrototypes, create_backbone

    n_mod, t = 1 + len(opts.modalities), cfg.train
    if t.batch_size % n_mod:
        raise MedxferInputError(f"train.batch_size ({t.batch_size}) must be a multiple of the "
                                f"number of modalities ({n_mod}): each batch holds equal parts",
                                field="train.batch_size")
    sources, first = _sources(cfg, opts)
    info = first.info
    study_labels = cfg.cell is not None and (cfg.cell.fraction is not None
                                             or cfg.cell.n_labelled is not None)
    hybrid = (opts.labelled_fraction > 0 or study_labels) and opts.beta > 0
    criterion = SwaVHybridLoss(opts.alpha, opts.beta, multilabel=info.multilabel,
                               temperature=opts.temperature, epsilon=opts.epsilon,
                               sinkhorn_iterations=opts.sinkhorn_iterations, n_modalities=n_mod)
    encoder = create_backbone(cfg.model.backbone, in_chans=chans, weights=cfg.model.weights)
    head = ProjectionHead(encoder.embed_dim, opts.proj_hidden_dim, opts.proj_out_dim,
                          num_layers=opts.proj_layers)
    net = SwaVNet(encoder, head, SwaVPrototypes(opts.proj_out_dim, opts.n_prototypes, n_mod),
                  nn.Linear(encoder.embed_dim, info.n_classes) if hybrid else None, n_mod)
    assign = list(opts.crops_for_assign)
    queue = FeatureQueue(len(assign), n_mod, opts.queue_length, opts.proj_out_dim) \
        if opts.queue_length > 0 else None
    state = {"epoch": 1}
    session = get_session()
    distributed = session.world_size > 1

    def codes(model, scores, view: int, train: bool) -> Tensor:
        use_queue = train and queue is not None and state["epoch"] >= opts.queue_start_epoch
        protos = unwrap(model).prototypes
        queued = [protos(queue.get(view, m), modality=m) if use_queue
                  else scores.new_zeros(0, scores.shape[1]) for m in range(n_mod)]
        return queue_codes(scores, queued, opts.epsilon, opts.sinkhorn_iterations, distributed)

    def loss(model, batch, train: bool):
        views, y, labelled = batch
        z, scores, logits = model([modality_major(v) for v in views])
        q = [codes(model, scores[a], i, train) for i, a in enumerate(assign)]
        total = opts.alpha * swapped_prediction(scores, q, opts.temperature, assign).sum()
        if logits is not None:
            total = total + opts.beta * (criterion.supervised_per_sample(logits, y)
                                         * labelled.to(logits.dtype)).sum()
        if train and queue is not None and state["epoch"] >= opts.queue_start_epoch:
            queue.push([z[a] for a in assign])
        return total / len(z[0])

    if study_labels:  # a study's label fraction / count decides which labels L_sup sees
        labelled = np.isin(first.train.rows, first.labelled.rows)
        val_labelled = np.ones(len(first.val), dtype=bool)
    else:
        labelled = labelled_mask(len(first.train), opts.labelled_fraction, t.seed)
        val_labelled = labelled_mask(len(first.val), opts.labelled_fraction, t.seed)
    train_set = ModalityGroups([WithPatients(s.train) for s in sources], labelled)
    val_set = ModalityGroups([WithPatients(s.val) for s in sources], val_labelled)
    bs = t.batch_size // n_mod
    optimizer = build_optimizer(net, opts, t)
    schedule = IterationSchedule(opts, t.lr, t.epochs, iters_per_epoch(
        len(train_set), bs, session.world_size, drop_last=True))

    def on_epoch(epoch: int) -> None:
        state["epoch"] = epoch
        schedule.set_lr(optimizer)  # the loop reports the epoch's first rate

    def before_step(model) -> None:
        schedule.set_lr(optimizer)
        if schedule.frozen():
            unwrap(model).prototypes.weight.grad = None  # frozen: the optimiser skips them

    def after_step(model) -> None:
        unwrap(model).prototypes.normalize_()
        schedule.step()

    extra = {"schedule": schedule, **({"queue": queue} if queue is not None else {})}
    return ContrastiveParts(net=net, loss=loss, extra=extra, train_set=train_set,
                            val_set=val_set, batch_size=bs, on_epoch=on_epoch,
                            before_step=before_step, after_step=after_step,
                            optimizer=optimizer)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """SwAV (hybrid, multi-modality) pretraining; see the module docstring."""
    contrastive.run(config, build_parts)


METHOD = register_method(Method(
    name="swav", train_loop_per_worker=train_loop_per_worker, config_schema=SwaVOptions,
    defaults=DEFAULTS,
    description="SwAV online clustering: Sinkhorn codes, per-modality prototypes, hybrid labels"))
