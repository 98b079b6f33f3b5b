"""TissueSpec: presets, YAML round trip, validation errors that name the field."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import yaml

import topdown as td
from topdown.errors import DataFileError, SpecError
from topdown.sim.spec import ArtefactSpec, TissueSpec

PRESETS = ["cortex_laminar", "mouse_brain_coronal", "olfactory_bulb", "sciatic_nerve", "spinal_cord"]
CLASSES = {
    "mouse_brain_coronal": ["cortex", "fiber_tracts", "hippocampus_CA", "dentate_gyrus", "thalamus",
                            "hypothalamus", "striatum", "lateral_ventricle"],
    "spinal_cord": ["white_matter", "dorsal_horn", "ventral_horn", "central_canal"],
    "sciatic_nerve": ["epineurium", "perineurium", "fascicle", "adipose"],
    "olfactory_bulb": ["olfactory_nerve_layer", "glomerular_layer", "external_plexiform_layer",
                       "mitral_cell_layer", "granule_cell_layer", "rostral_migratory_stream"],
    "cortex_laminar": ["layer_1", "layer_2", "layer_3", "layer_4", "layer_5", "layer_6", "white_matter"],
}


def _minimal() -> dict:
    return {
        "name": "toy",
        "regions": [
            {"name": "outer", "color": "#112233",
             "geometry": {"type": "ellipse", "radii": [1000, 800]},
             "populations": [{"name": "a", "density": [100, 200]}]},
            {"name": "inner", "parent": "outer",
             "geometry": {"type": "ellipse", "radii": [300, 300]}},
        ],
    }


def test_presets_listed_and_classes():
    assert td.sim.presets() == PRESETS
    for name in PRESETS:
        spec = td.sim.load_preset(name)
        assert spec.name == name
        assert spec.classes == CLASSES[name]
        assert set(spec.colors) == set(spec.classes)
        assert len(spec.sources) >= 3, f"{name} must record its published sources"
        assert all(r.populations for r in spec.regions), f"{name}: every region needs nuclei"


def _nuclear_area_fraction(region) -> tuple[float, float]:
    """Lowest and highest share of the section covered by nuclei in ``region``."""
    def nucleus_area_mm2(population) -> float:
        return math.pi * (population.diameter_um / 2.0) ** 2 * 1e-6

    lo = sum(p.density[0] * nucleus_area_mm2(p) for p in region.populations)
    hi = sum(p.density[1] * nucleus_area_mm2(p) for p in region.populations)
    return lo, hi


def test_cortex_layers_alternate_in_nuclear_density():
    """Adjacent cortical layers never overlap in how much of the section their nuclei cover.

    Cell-sparse layer 1, dense layer 2, sparser layer 3, dense granular layer 4, sparse
    large-cell layer 5, dense layer 6, sparse white matter: whatever densities a frame
    draws, each layer keeps its place in this order, so the laminae stay visible.
    """
    spec = td.sim.load_preset("cortex_laminar")
    fractions = [_nuclear_area_fraction(r) for r in spec.regions]
    assert [r.name for r in spec.regions] == CLASSES["cortex_laminar"]
    for i, ((lo_a, hi_a), (lo_b, hi_b)) in enumerate(zip(fractions[:-1], fractions[1:], strict=True)):
        denser_below = i % 2 == 0            # layer 1 < layer 2 > layer 3 < layer 4 > ...
        if denser_below:
            assert hi_a < lo_b, (spec.regions[i].name, fractions[i], fractions[i + 1])
        else:
            assert lo_a > hi_b, (spec.regions[i].name, fractions[i], fractions[i + 1])


def test_bulb_core_is_darker_than_the_granule_layer():
    """The rostral migratory stream core is the bulb's most cell-packed tissue.

    Its nuclei cover more of the section than the granule layer's at any drawn density, on
    the same background, so the core renders darker; a paler background of its own made it
    lighter than the granule layer in a quarter to a third of frames.
    """
    regions = {r.name: r for r in td.sim.load_preset("olfactory_bulb").regions}
    core, granule = regions["rostral_migratory_stream"], regions["granule_cell_layer"]
    assert _nuclear_area_fraction(core)[0] > _nuclear_area_fraction(granule)[1]
    assert core.background == granule.background


@pytest.mark.parametrize("name", PRESETS)
def test_yaml_round_trip(name, tmp_path):
    spec = td.sim.load_preset(name)
    path = tmp_path / "spec.yaml"
    text = spec.to_yaml(path)
    again = TissueSpec.from_yaml(path)
    assert again == spec
    assert again.to_yaml() == text
    assert TissueSpec.from_dict(spec.to_dict()) == spec
    assert again.hash() == spec.hash() and len(spec.hash()) == 64


def test_hash_changes_with_content():
    spec = td.sim.load_preset("spinal_cord")
    other = copy.deepcopy(spec)
    other.imaging.size = 128
    assert other.hash() != spec.hash()


def test_seam_fields():
    spec = td.sim.load_preset("mouse_brain_coronal")
    assert spec.imaging.modality in ("he", "dapi")
    assert isinstance(spec.imaging.pixel_size_um, float) and isinstance(spec.imaging.size, int)
    ranges = dataclasses.asdict(spec.artefacts)
    for key in ("noise", "blur_px", "vignetting", "illumination", "stain_shift", "debris", "bubbles",
                "tears", "folds", "jpeg_quality", "fiducial_frame"):
        lo, hi = ranges[key]
        assert lo <= hi
    assert dataclasses.asdict(ArtefactSpec())["noise"] == (0.0, 0.08)
    assert spec.pathology is not None and spec.pathology.cell_loss.region == "hippocampus_CA"


def test_minimal_spec_defaults():
    spec = TissueSpec.from_dict(_minimal())
    assert spec.classes == ["outer", "inner"]
    assert spec.colors["inner"] == "#808080"
    assert spec.regions[0].populations[0].density == (100.0, 200.0)
    assert spec.regions[0].populations[0].pattern.type == "uniform"


def _err(mutate) -> str:
    d = _minimal()
    mutate(d)
    with pytest.raises(SpecError) as info:
        TissueSpec.from_dict(d)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_unknown_preset_lists_valid_names():
    with pytest.raises(SpecError, match="unknown preset 'mouse_brian'.*mouse_brain_coronal.*spinal_cord"):
        td.sim.load_preset("mouse_brian")


def test_negative_density_names_field():
    msg = _err(lambda d: d["regions"][0]["populations"][0].update(density=-5))
    assert "regions[0].populations[0].density" in msg and "allowed" in msg


def test_unknown_key_lists_allowed_keys():
    msg = _err(lambda d: d["regions"][0].update(colour="#000000"))
    assert "'colour'" in msg and "allowed keys" in msg and "color" in msg
    msg = _err(lambda d: d.update(imagng={}))
    assert "'imagng'" in msg and "imaging" in msg


def test_bad_enum_lists_allowed_values():
    msg = _err(lambda d: d.update(imaging={"modality": "ihc"}))
    assert "imaging.modality" in msg and "he, dapi" in msg
    msg = _err(lambda d: d["regions"][0]["populations"][0].update(pattern={"type": "spiral"}))
    assert "pattern.type" in msg and "uniform, clustered, rows, rings" in msg
    msg = _err(lambda d: d["regions"][0]["geometry"].update(type="blob"))
    assert "geometry" in msg and "ellipse" in msg and "butterfly" in msg


def test_unresolvable_geometry():
    msg = _err(lambda d: d["regions"][1].update(parent="nowhere"))
    assert "parent" in msg and "'nowhere'" in msg and "outer" in msg
    msg = _err(lambda d: d["regions"][1].update(geometry={"type": "shell", "of": "ghost", "depth": [0, 5]}))
    assert "geometry" in msg and "'ghost'" in msg
    msg = _err(lambda d: d["regions"][0].update(geometry={"type": "ref", "name": "inner"}))
    assert "circular" in msg
    msg = _err(lambda d: d["regions"][0].update(geometry={"type": "ellipse"}))
    assert "radii" in msg and "required" in msg
    msg = _err(lambda d: d["regions"][0]["geometry"].update(radii=[{"lerp": [1, 2], "var": "age"}, 3]))
    assert "unknown variable 'age'" in msg


def test_other_bad_values():
    assert "color" in _err(lambda d: d["regions"][0].update(color="red"))
    assert "duplicate region" in _err(lambda d: d["regions"][1].update(name="outer"))
    assert "low > high" in _err(lambda d: d["regions"][0]["populations"][0].update(density=[5, 1]))
    assert "imaging.size" in _err(lambda d: d.update(imaging={"size": 2}))
    assert "name" in _err(lambda d: d.pop("name"))
    assert "same stain" in _err(lambda d: d["regions"][1].update(
        populations=[{"name": "a", "density": 5, "stain": {"dapi": 0.2}}]))
    assert "pathology.cell_loss.region" in _err(lambda d: d.update(pathology={"cell_loss": {"region": "x"}}))


def test_malformed_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: toy\nregions: [\n  - {name: a\n")
    with pytest.raises(SpecError, match="malformed YAML"):
        TissueSpec.from_yaml(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(SpecError, match="mapping"):
        TissueSpec.from_yaml(scalar)
    with pytest.raises(DataFileError, match="does not exist"):
        TissueSpec.from_yaml(tmp_path / "absent.yaml")


def test_yaml_is_safe_and_plain():
    text = td.sim.load_preset("olfactory_bulb").to_yaml()
    assert "!!python" not in text
    assert yaml.safe_load(text)["name"] == "olfactory_bulb"
