"""The public names promised in the API contract exist and stay functions, even after every
submodule has been imported directly (a submodule import can rebind a package attribute)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import topdown as td

API = {
    "sim": ["presets", "load_preset", "TissueSpec", "simulate", "SimDataset", "layout", "expression",
            "region_mask", "nuclei_mask", "render_section", "apply_artefacts"],
    "seg": ["train", "TrainPlan", "load", "segment", "evaluate", "finetune", "RegionMap", "SegModel", "available_models"],
    "io": ["read_visium", "read_merscope", "read_cells", "write_annotated", "read_annotated",
           "to_spatialdata", "write_geojson", "read_giotto_visium"],
    "tl": ["segment_regions", "assign_regions", "pseudobulk", "region_de"],
    "pl": ["regions", "region_de", "region_de_heatmap", "region_de_counts"],
    "datasets": ["list", "fetch", "demo", "manifest"],
    "get": ["regions", "region_de_df", "spatial_coords", "library_column", "spatial_libraries",
            "resolve_libraries", "scalefactors", "pick_image", "fullres_um_per_px", "technology",
            "StoredRegions", "load_store", "store_entry"],
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


def test_lazy_names_must_not_equal_their_module():
    from topdown._lazy import attach

    with pytest.raises(ValueError, match="equal their module's name"):
        attach("topdown.sim", {"simulate": ".simulate"})
