"""Names of ``topdown.get``, for readers, IDEs and type checkers; loaded lazily at run time."""

from ._library import SpatialLayout as SpatialLayout
from ._library import affine_matrix as affine_matrix
from ._library import fullres_um_per_px as fullres_um_per_px
from ._library import library_column as library_column
from ._library import pick_image as pick_image
from ._library import resolve_libraries as resolve_libraries
from ._library import scalefactors as scalefactors
from ._library import spatial_coords as spatial_coords
from ._library import spatial_libraries as spatial_libraries
from ._library import technology as technology
from ._nuclei_store import nuclei as nuclei
from ._nuclei_store import nuclei_per_region as nuclei_per_region
from ._regions_store import StoredRegions as StoredRegions
from ._regions_store import load_store as load_store
from ._regions_store import store_entry as store_entry
from ._tables import REGION_DE_COLUMNS as REGION_DE_COLUMNS
from ._tables import region_de_df as region_de_df
from ._tables import regions as regions
