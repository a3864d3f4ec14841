"""FaceLab checkpoint hub: finds and verifies the model folders listed in hub/registry.py.

    import hub
    if hub.available("parser"):
        folder = hub.resolve("parser")   # the verified folder; core.loading.load_model builds the model

It knows no model classes and imports nothing else of FaceLab. `python -m hub list|pull NAME|verify [NAME]|hash FOLDER`
manages the weights from the shell (hub/__main__.py). See hub/store.py for the search order.
"""
from hub.registry import MODELS, ModelEntry
from hub.snippet import hash_folder, registry_entry_from_folder
from hub.store import (ChecksumMismatch, ModelNotAvailable, available, clear_cache, resolve,
                        verification_error)

__all__ = ["MODELS", "ModelEntry", "ChecksumMismatch", "ModelNotAvailable", "available", "clear_cache",
           "hash_folder", "registry_entry_from_folder", "resolve", "verification_error"]
