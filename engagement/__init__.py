"""engagement: measure, analyse and act on customer engagement.

Import it as ``import engagement as eg``; every metric function is at the top
level (``eg.nps``, ``eg.churn_rate``, ...) and returns a :class:`MetricResult`.
The data, measurement and analysis layers load on first use, so a notebook that
only needs the metrics starts fast.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from engagement._result import MetricResult
from engagement.metrics import *  # noqa: F403
from engagement.metrics import __all__ as _metric_names

if TYPE_CHECKING:  # the lazily loaded names, for type checkers and linters
    from engagement.analysis.clv import BGNBD, GammaGamma, ModelFitError, customer_lifetime_value
    from engagement.data.load import ContractError, Dataset, load

__version__ = "0.1.0"

_LAZY = {
    "BGNBD": "engagement.analysis.clv",
    "GammaGamma": "engagement.analysis.clv",
    "ModelFitError": "engagement.analysis.clv",
    "customer_lifetime_value": "engagement.analysis.clv",
    "ContractError": "engagement.data.load",
    "Dataset": "engagement.data.load",
    "load": "engagement.data.load",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'engagement' has no attribute {name!r}")


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
