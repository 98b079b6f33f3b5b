"""The public names promised in the API contract exist and stay functions, even after every
submodule has been imported directly (a submodule import can rebind a package attribute)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import topdown as td

API = {
    "sim": ["presets", "load_preset", "TissueSpec", "simulate", "SimDataset", "layout", "expression",
            "region_mask", "nuclei_mask", "render_section", "apply_artefacts", "calibrate", "measure_image",
            "CalibrationReport"],
    "seg": ["train", "TrainPlan", "load", "segment", "evaluate", "finetune", "adapt", "LayerPrior",
            "apply_layer_prior", "RegionMap", "SegModel", "available_models", "nuclei", "Nuclei",
            "train_nuclei", "match_instances", "centroid_scores"],
    "io": ["read_visium", "read_merscope", "read_cells", "write_annotated", "read_annotated",
           "to_spatialdata", "write_geojson", "read_geojson", "read_geojson_regions", "to_napari_shapes",
           "read_giotto_visium", "read_giotto_merscope", "read_xenium", "read_visium_hd", "read_cosmx", "from_spatialdata"],
    "tl": ["segment_regions", "assign_regions", "assign_points", "pseudobulk", "region_de", "segment_nuclei",
           "nuclei_density_test"],
    "pl": ["regions", "region_de", "region_de_heatmap", "region_de_counts", "nuclei"],
    "datasets": ["list", "fetch", "demo", "manifest"],
    "get": ["regions", "region_de_df", "SpatialLayout", "spatial_coords", "library_column", "spatial_libraries",
            "resolve_libraries", "scalefactors", "pick_image", "fullres_um_per_px", "technology", "affine_matrix",
            "StoredRegions", "load_store", "store_entry", "nuclei", "nuclei_per_region"],
}


def _import_everything() -> None:
    for mod in pkgutil.walk_packages(td.__path__, "topdown."):
        if ".blender" in mod.name or mod.name == "topdown.__main__":  # bpy / runs the CLI
            continue
        importlib.import_module(mod.name)


@pytest.mark.parametrize("sub", sorted(API))
def test_public_names_are_callables_after_importing_all_submodules(sub):
    _import_everything()
    package = getattr(td, sub)
    for name in API[sub]:
        obj = getattr(package, name)
        assert not inspect.ismodule(obj) and callable(obj), f"td.{sub}.{name} is {obj!r}"


@pytest.mark.parametrize("sub", sorted(API))
def test_each_package_is_its_stub(sub):
    """``__init__.pyi`` lists exactly the package's public names (lazy_loader reads it at run
    time, IDEs and type checkers read it statically), and every name there exists."""
    package = importlib.import_module(f"topdown.{sub}")
    stub = Path(package.__file__).with_suffix(".pyi")
    names = [alias.asname or alias.name for node in ast.parse(stub.read_text()).body
             if isinstance(node, ast.ImportFrom) for alias in node.names]
    assert sorted(names) == sorted(package.__all__) == sorted(dir(package))
    assert set(API[sub]) <= set(names)
    for name in names:
        getattr(package, name)
