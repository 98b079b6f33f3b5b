"""Names of ``topdown.seg``, for readers, IDEs and type checkers; loaded lazily at run time."""

from ._adapt import adapt as adapt
from ._evaluate import evaluate as evaluate
from ._finetune import finetune as finetune
from ._train import TrainPlan as TrainPlan
from ._train import train as train
from .checkpoint import available_models as available_models
from .checkpoint import load as load
from .checkpoint import save as save
from .infer import segment as segment
from .layers import LayerPrior as LayerPrior
from .layers import apply_layer_prior as apply_layer_prior
from .model import SegModel as SegModel
from .nuclei_infer import Nuclei as Nuclei
from .nuclei_infer import nuclei as nuclei
from .nuclei_metrics import centroid_scores as centroid_scores
from .nuclei_metrics import match_instances as match_instances
from .nuclei_train import train_nuclei as train_nuclei
from .regionmap import RegionMap as RegionMap
