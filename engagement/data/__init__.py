"""Data: the contract, loading and validation, the demo generator and the CDNOW loader."""

from engagement.data.cdnow import CdnowData, load_cdnow

__all__ = ["CdnowData", "load_cdnow"]
