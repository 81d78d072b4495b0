"""engagement: measure, analyse and act on customer engagement.

Import it as ``import engagement as eg``; every metric function is at the top
level (``eg.nps``, ``eg.churn_rate``, ...) and returns a :class:`MetricResult`.
"""

from engagement._result import MetricResult
from engagement.analysis.clv import BGNBD, GammaGamma, ModelFitError, customer_lifetime_value
from engagement.data import ContractError, Dataset, load
from engagement.metrics import *  # noqa: F403
from engagement.metrics import __all__ as _metric_names

__version__ = "0.1.0"

__all__ = [
    "BGNBD",
    "ContractError",
    "Dataset",
    "GammaGamma",
    "MetricResult",
    "ModelFitError",
    "__version__",
    "customer_lifetime_value",
    "load",
    *_metric_names,
]
