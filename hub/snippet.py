"""Write the hub/registry.py lines for a trained model folder (`python -m hub hash FOLDER`)."""
from __future__ import annotations

import json
from pathlib import Path

from hub.store import sha256_file


def hash_folder(folder: str | Path) -> dict[str, str]:
    """sha256 of every file a registry entry may list (registry.ALLOWED_SUFFIXES: configs, cards, safetensors)."""
    from hub.registry import ALLOWED_SUFFIXES

    folder = Path(folder)
    names = sorted(path.name for path in folder.iterdir() if path.is_file() and path.name.endswith(ALLOWED_SUFFIXES))
    if "config.json" not in names or not any(name.endswith(".safetensors") for name in names):
        raise FileNotFoundError(f"{folder} is not a model folder (needs config.json and *.safetensors)")
    return {name: sha256_file(folder / name) for name in names}


def registry_entry_from_folder(name: str, folder: str | Path, repo_id: str | None = None,
                               revision: str | None = None, licence: str = "TODO",
                               data_terms: str = "TODO", retrain: str = "TODO") -> str:
    """Python source to paste into hub/registry.py: the ModelEntry, after a comment naming the class (from
    config.json's `_class`) that core/loading.py's MODEL_CLASSES must map `name` to."""
    files = hash_folder(folder)
    class_name = json.loads((Path(folder) / "config.json").read_text()).get("_class", "TODO")
    file_lines = "".join(f"        {file!r}: {digest!r},\n" for file, digest in files.items())
    return (
        f"# core/loading.py MODEL_CLASSES: {name!r}: {class_name},\n"
        f"ModelEntry(\n"
        f"    name={name!r},\n"
        f"    files={{\n{file_lines}    }},\n"
        f"    licence={licence!r},\n"
        f"    data_terms={data_terms!r},\n"
        f"    retrain={retrain!r},\n"
        f"    repo_id={repo_id!r},\n"
        f"    revision={revision!r},\n"
        f"),\n"
    )
