"""Names of ``topdown.sim``, for readers, IDEs and type checkers; loaded lazily at run time."""

from .artefacts import apply_artefacts as apply_artefacts
from .calibrate import CalibrationReport as CalibrationReport
from .calibrate import calibrate as calibrate
from .dataset import SimDataset as SimDataset
from .expression import expression as expression
from .expression import expression_study as expression_study
from .layout import layout as layout
from .measure import ImageMeasurement as ImageMeasurement
from .measure import measure_image as measure_image
from .presets import load_preset as load_preset
from .presets import presets as presets
from .rasterize import nuclei_mask as nuclei_mask
from .rasterize import region_mask as region_mask
from .render import render_section as render_section
from .section import Section as Section
from .simulate import simulate as simulate
from .spec import TissueSpec as TissueSpec
