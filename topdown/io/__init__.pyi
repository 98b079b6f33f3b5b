"""Names of ``topdown.io``, for readers, IDEs and type checkers; loaded lazily at run time."""

from ._cosmx import read_cosmx as read_cosmx
from ._generic import read_cells as read_cells
from ._geojson import write_geojson as write_geojson
from ._giotto import read_giotto_visium as read_giotto_visium
from ._merscope import read_merscope as read_merscope
from ._merscope_mini import read_giotto_merscope as read_giotto_merscope
from ._napari import to_napari_shapes as to_napari_shapes
from ._qupath import read_geojson as read_geojson
from ._qupath import read_geojson_regions as read_geojson_regions
from ._spatialdata import from_spatialdata as from_spatialdata
from ._spatialdata import to_spatialdata as to_spatialdata
from ._visium import read_visium as read_visium
from ._visium_hd import read_visium_hd as read_visium_hd
from ._write import read_annotated as read_annotated
from ._write import write_annotated as write_annotated
from ._xenium import read_xenium as read_xenium
