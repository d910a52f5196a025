"""A fitted segmentation on disk: `model.json` (what each field is and how it is encoded) and
`model.npz` (the arrays). The format is the project's own and holds only numbers and text:
loading it never runs code (no pickle; `np.load(allow_pickle=False)`), so a stored model
cannot carry anything but a model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from segmentation.assign import FittedSegmentation
from segmentation.pipeline.features import FeatureEncoder, FieldEncoding
from segmentation.pipeline.lineage import reference_from_wire, reference_to_wire
from segmentation.pipeline.models import CentroidModel, DensityModel
from segmentation.pipeline.schema import FieldRole, FieldSpec, Schema

__all__ = ["FORMAT_VERSION", "load_fitted", "save_fitted"]

FORMAT_VERSION = 1
MANIFEST = "model.json"
ARRAYS = "model.npz"


def _spec_state(spec: FieldSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "role": spec.role.value,
        "reason": spec.reason,
        "dateFormat": spec.date_format,
        "numberFormat": spec.number_format,
        "placeholders": list(spec.placeholders),
        "aliases": [list(pair) for pair in spec.aliases],
        "positive": spec.positive,
        "meaning": spec.meaning,
        "notes": list(spec.notes),
    }


def _spec_of(state: dict[str, Any]) -> FieldSpec:
    # keys added since the first models: absent in those, which read values as sent
    return FieldSpec(
        state["name"], FieldRole(state["role"]), state["reason"], state["dateFormat"],
        number_format=state.get("numberFormat"),
        placeholders=tuple(float(v) for v in state.get("placeholders", ())),
        aliases=tuple((a, b) for a, b in state.get("aliases", ())),
        positive=state.get("positive"), meaning=state.get("meaning"),
        notes=tuple(state.get("notes", ())),
    )  # fmt: skip


def _encoding_state(encoding: FieldEncoding) -> dict[str, Any]:
    return {
        "spec": _spec_state(encoding.spec),
        "columns": [encoding.columns.start, encoding.columns.stop],
        "missing": encoding.missing,
        "fillValue": encoding.fill_value,
        "log": encoding.log,
        "center": encoding.center,
        "scale": encoding.scale,
        "levels": list(encoding.levels),
        "missingIndicator": encoding.missing_indicator,
        "dependence": encoding.dependence,
        "weight": encoding.weight,
        "notes": list(encoding.notes),
    }


def _encoding_of(state: dict[str, Any]) -> FieldEncoding:
    start, stop = state["columns"]
    return FieldEncoding(
        spec=_spec_of(state["spec"]),
        columns=slice(start, stop),
        missing=state["missing"],
        fill_value=state["fillValue"],
        log=state["log"],
        center=state["center"],
        scale=state["scale"],
        levels=tuple(state["levels"]),
        missing_indicator=state["missingIndicator"],
        dependence=state["dependence"],
        weight=state["weight"],
        notes=tuple(state["notes"]),
    )


def save_fitted(fitted: FittedSegmentation, folder: Path) -> None:
    """Write model.json and model.npz into `folder` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    encoder, model = fitted.encoder, fitted.model
    arrays: dict[str, np.ndarray] = {"centers": fitted.centers}
    if encoder.pca_components_ is not None and encoder.pca_mean_ is not None:
        arrays["pca_components"] = encoder.pca_components_
        arrays["pca_mean"] = encoder.pca_mean_
    if isinstance(model, CentroidModel):
        model_state: dict[str, Any] = {"kind": "centroid"}
        arrays["model_centers"] = model.centers
    else:
        model_state = {
            "kind": "density",
            "eps": model.eps,
            "minSamples": model.min_samples,
            "nSegments": model.n_segments,
        }
        arrays["core_points"] = model.core_points
        arrays["core_labels"] = model.core_labels
    manifest = {
        "formatVersion": FORMAT_VERSION,
        "schema": {
            "idField": encoder.schema.id_field,
            "fields": [_spec_state(spec) for spec in encoder.schema.fields],
        },
        "randomState": encoder.random_state,
        "nColumns": encoder.n_columns_,
        "encodings": [_encoding_state(e) for e in encoder.encodings_],
        "model": model_state,
        "segmentNames": list(fitted.segment_names),
        "segmentIds": fitted.ids.tolist(),
        "outlierSegment": fitted.outlier_segment,
        "segmentSizes": list(fitted.sizes),
        "standardized": list(fitted.standardized),
        "driftReference": reference_to_wire(fitted.reference),
        "nextSegmentId": fitted.next_id,
    }
    np.savez(folder / ARRAYS, **arrays)  # type: ignore[arg-type]  # numpy stubs: allow_pickle
    (folder / MANIFEST).write_text(json.dumps(manifest))


def load_fitted(folder: Path) -> FittedSegmentation:
    """Read a model written by `save_fitted`; refuses other format versions."""
    manifest = json.loads((folder / MANIFEST).read_text())
    if manifest.get("formatVersion") != FORMAT_VERSION:
        raise ValueError(
            f"model format {manifest.get('formatVersion')!r} in {folder} is not "
            f"{FORMAT_VERSION}; re-run the analysis"
        )
    with np.load(folder / ARRAYS, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    schema = Schema(
        fields=tuple(_spec_of(s) for s in manifest["schema"]["fields"]),
        id_field=manifest["schema"]["idField"],
    )
    encoder = FeatureEncoder(schema, manifest["randomState"])
    encoder.encodings_ = [_encoding_of(state) for state in manifest["encodings"]]
    encoder.n_columns_ = manifest["nColumns"]
    encoder.pca_components_ = arrays.get("pca_components")
    encoder.pca_mean_ = arrays.get("pca_mean")
    model_state = manifest["model"]
    if model_state["kind"] == "centroid":
        model: CentroidModel | DensityModel = CentroidModel(arrays["model_centers"])
    else:
        model = DensityModel(
            arrays["core_points"],
            arrays["core_labels"],
            model_state["eps"],
            model_state["minSamples"],
            model_state["nSegments"],
        )
    return FittedSegmentation(
        encoder,
        model,
        arrays["centers"],
        tuple(manifest["segmentNames"]),
        manifest["outlierSegment"],
        tuple(manifest.get("segmentIds", ())),
        tuple(manifest.get("segmentSizes", ())),
        tuple(manifest.get("standardized", ())),
        reference_from_wire(manifest.get("driftReference", {})),
        manifest.get("nextSegmentId", len(manifest["segmentNames"])),
    )
