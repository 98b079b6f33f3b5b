"""Names of ``topdown.tl``, for readers, IDEs and type checkers; loaded lazily at run time."""

from ._assign_points import assign_points as assign_points
from ._assign_regions import assign_regions as assign_regions
from ._nuclei_density import nuclei_density_test as nuclei_density_test
from ._pseudobulk import pseudobulk as pseudobulk
from ._region_de import region_de as region_de
from ._segment_nuclei import segment_nuclei as segment_nuclei
from ._segment_regions import segment_regions as segment_regions
