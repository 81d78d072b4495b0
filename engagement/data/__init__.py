"""Data: the contract, loading and validation, the demo generator and the CDNOW loader."""

from engagement.data.cdnow import CdnowData, load_cdnow
from engagement.data.load import ContractError, DataLike, Dataset, as_dataset, load
from engagement.data.schema import CONTRACT

__all__ = ["CONTRACT", "CdnowData", "ContractError", "DataLike", "Dataset", "as_dataset", "load", "load_cdnow"]
