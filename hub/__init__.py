"""FaceLab checkpoint hub: finds, verifies and loads the models listed in hub/registry.py.

    import hub
    if hub.available("parser"):
        parser = hub.load("parser", device="cpu")   # built once per (name, device, dtype), shared

`hub.resolve(name)` gives the verified folder; `python -m hub list|pull NAME|verify [NAME]|hash FOLDER`
manages the weights from the shell (hub/__main__.py). See hub/store.py for the search order.
"""
from hub.registry import MODELS, ModelEntry
from hub.snippet import hash_folder, registry_entry_from_folder
from hub.store import (ChecksumMismatch, ModelNotAvailable, available, clear_cache, load, resolve,
                        verification_error)

__all__ = ["MODELS", "ModelEntry", "ChecksumMismatch", "ModelNotAvailable", "available", "clear_cache",
           "hash_folder", "load", "registry_entry_from_folder", "resolve", "verification_error"]
