"""Names of ``topdown.pl``, for readers, IDEs and type checkers; loaded lazily at run time."""

from ._nuclei import nuclei as nuclei
from ._nuclei_density import nuclei_density as nuclei_density
from ._region_de import region_de as region_de
from ._region_de import region_de_counts as region_de_counts
from ._region_de import region_de_heatmap as region_de_heatmap
from ._regions import regions as regions
