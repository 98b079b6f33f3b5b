"""Readers and writers: Visium, MERSCOPE, Giotto, generic cell tables; region-annotated h5ad."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "read_visium": "._visium",
    "read_merscope": "._merscope",
    "read_cells": "._generic",
    "write_annotated": "._write",
    "read_annotated": "._write",
    "to_spatialdata": "._spatialdata",
    "write_geojson": "._geojson",
    "read_giotto_visium": "._giotto",
})
