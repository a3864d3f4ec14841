"""Every FaceLab model: which class builds it, where its weights live, what they hash to, under which terms.

One `ModelEntry` per model. A model folder has the Hugging Face model-repo layout written by
`ConfigModule.save_pretrained` (core/models/common.py): config.json, model.safetensors (or
model-0000K-of-0000N.safetensors + model.safetensors.index.json) and README.md (model card).
It is found, in order, under $FACELAB_CHECKPOINTS/<folder>/, under checkpoints/<folder>/ in
this repository, then on the Hugging Face Hub at `repo_id`, pinned to `revision` (hub/store.py).

Adding a model is a few lines:
  1. train it so that its folder lands in checkpoints/<name>/ (or push it to the Hub);
  2. run `python -m hub hash checkpoints/<name> --name <name>`: it prints the lazy class
     import and the `ModelEntry(...)` with every file's sha256;
  3. paste both below, fill in licence/data terms/retrain command, and add the entry to ENTRIES.

Model classes are imported lazily (a small function per model) so that reading the registry
imports no model code, and a search for the class name finds this file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
# What a model folder may hold: configs, model cards and safetensors. Nothing that is unpickled.
ALLOWED_SUFFIXES = (".json", ".md", ".safetensors")


@dataclass(frozen=True)
class ModelEntry:
    name: str                      # key for hub.load(name); also the default folder name
    model_class: Callable[[], type]  # returns the ConfigModule subclass (imported lazily)
    files: dict[str, str]          # file name in the folder -> sha256 hex digest
    licence: str                   # licence of the weights
    data_terms: str                # terms of the training data the weights inherit
    retrain: str                   # command line that rebuilds the folder
    repo_id: str | None = None     # Hugging Face model repo ("org/name"); None: not published
    revision: str | None = None    # pinned 40-hex commit of repo_id
    folder: str = ""               # folder name under checkpoints/ and $FACELAB_CHECKPOINTS; "" means `name`
    description: str = field(default="", compare=False)

    def __post_init__(self):
        if not self.folder:
            object.__setattr__(self, "folder", self.name)
        if not self.files:
            raise ValueError(f"{self.name}: list the folder's files with their sha256 (python -m hub hash FOLDER)")
        for file, digest in self.files.items():
            if "/" in file or not file.endswith(ALLOWED_SUFFIXES):
                raise ValueError(f"{self.name}: {file!r} must be a top-level {'/'.join(ALLOWED_SUFFIXES)} file")
            if not _SHA256.fullmatch(digest):
                raise ValueError(f"{self.name}: {file}: {digest!r} is not a lowercase sha256 hex digest")
        if self.repo_id is not None and not (self.revision and _COMMIT.fullmatch(self.revision)):
            raise ValueError(f"{self.name}: a Hub repo needs a pinned revision (40-hex commit), got {self.revision!r}")


# Lazy class imports, one small function per model, e.g.
#   def _parser():
#       from core.models.parser import FaceParser
#       return FaceParser


ENTRIES: tuple[ModelEntry, ...] = (
    # ModelEntry(name="parser", model_class=_parser, files={...}, ...),
)

MODELS: dict[str, ModelEntry] = {entry.name: entry for entry in ENTRIES}
