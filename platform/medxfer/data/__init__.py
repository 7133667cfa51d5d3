"""Data the methods train on: MedMNIST-layout ``.npz`` loader, splits, transforms, synthetic data.

Public API (imported lazily so that ``medxfer --help`` does not pay for torch):

* :class:`MedMNISTDataset`, :func:`load_target`, :func:`load_split`, :func:`dataset_info`,
  :class:`DatasetInfo`, :func:`npz_path` (``medxfer.data.medmnist``);
* :func:`subsample_per_class`, :func:`thesis_subsets`, :func:`stratified_kfold`,
  :func:`ood_split`, :func:`group_shuffle_split`, :func:`label_fractions`,
  :func:`few_shot_fractions`, :func:`nested_fractions`, :func:`leave_one_site_out`,
  :func:`leave_target_out`, :func:`pool_labels` (``medxfer.data.splits``);
* :class:`CXRDataset`, :class:`Manifest`, :func:`read_manifest`, :func:`scan_folder`,
  :func:`read_image`, :data:`CXR14_LABELS`, :data:`CHEXPERT_LABELS` (``medxfer.data.cxr``);
* :func:`build_transform`, :func:`list_transforms`, :func:`transform_info`, :func:`preset`,
  :class:`TwoViews`
  (``medxfer.data.transforms``);
* :func:`load_source`, :class:`Source`, :class:`SourceDataset` (``medxfer.data.sources``): one
  dataset interface over ``.npz`` and manifests;
* :func:`select_cell`, :func:`select_transfer`, :class:`Selection` (``medxfer.data.protocol``):
  a study cell's rows;
* :func:`synthesize`, :data:`MODALITIES` (``medxfer.data.synth``); :func:`synthesize_hospitals`,
  :func:`synthesize_cxr_manifest` (``medxfer.data.synth_studies``);
* :func:`list_confounders`, :func:`confounder_transform` (``medxfer.data.confounders``),
  :func:`confound`, :class:`ConfoundedDataset` (``medxfer.data.shortcut_sets``): shortcut studies.
"""

from __future__ import annotations

from medxfer._lazy import lazy_exports

_EXPORTS = {
    "medmnist": ("MedMNISTDataset", "DatasetInfo", "SplitArrays", "dataset_info", "load_split",
                 "load_target", "npz_path", "write_sidecar", "MEDMNIST_2D", "SIZES", "SPLITS",
                 "TASKS"),
    "splits": ("subsample_per_class", "thesis_subsets", "stratified_kfold", "ood_split",
               "group_shuffle_split", "label_fractions", "few_shot_fractions", "nested_fractions",
               "leave_one_site_out", "leave_target_out", "pool_labels", "PooledLabels"),
    "cxr": ("CXRDataset", "Manifest", "read_manifest", "scan_folder", "read_image",
            "CXR14_LABELS", "CHEXPERT_LABELS"),
    "transforms": ("build_transform", "list_transforms", "preset", "preset_spec", "TwoViews",
                   "Compose", "register_transform", "reference_energies", "transform_info",
                   "TransformInfo"),
    "synth": ("synthesize", "MODALITIES"),
    "sources": ("load_source", "Source", "SourceDataset"),
    "protocol": ("select_cell", "select_transfer", "Selection"),
    "synth_studies": ("synthesize_hospitals", "synthesize_cxr_manifest"),
    "confounders": ("list_confounders", "confounder_info", "confounder_transform"),
    "shortcut_sets": ("confound", "Confounding", "ConfoundedDataset"),
}
__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
