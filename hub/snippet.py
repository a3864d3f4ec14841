"""Write the hub/registry.py lines for a trained model folder (`python -m hub hash FOLDER`)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from hub.store import sha256_file

CORE_MODELS = Path(__file__).resolve().parents[1] / "core" / "models"


def hash_folder(folder: str | Path) -> dict[str, str]:
    """sha256 of every file a registry entry may list (registry.ALLOWED_SUFFIXES: configs, cards, safetensors)."""
    from hub.registry import ALLOWED_SUFFIXES

    folder = Path(folder)
    names = sorted(path.name for path in folder.iterdir() if path.is_file() and path.name.endswith(ALLOWED_SUFFIXES))
    if "config.json" not in names or not any(name.endswith(".safetensors") for name in names):
        raise FileNotFoundError(f"{folder} is not a model folder (needs config.json and *.safetensors)")
    return {name: sha256_file(folder / name) for name in names}


def _class_module(class_name: str) -> str:
    """The core.models module defining `class_name`, found by a text search (nothing imported)."""
    pattern = re.compile(rf"^class {re.escape(class_name)}\b", re.MULTILINE)
    for path in sorted(CORE_MODELS.glob("*.py")):
        if pattern.search(path.read_text()):
            return f"core.models.{path.stem}"
    return "core.models.TODO"


def registry_entry_from_folder(name: str, folder: str | Path, repo_id: str | None = None,
                               revision: str | None = None, licence: str = "TODO",
                               data_terms: str = "TODO", retrain: str = "TODO") -> str:
    """Python source to paste into hub/registry.py: the lazy class import and the ModelEntry."""
    files = hash_folder(folder)
    class_name = json.loads((Path(folder) / "config.json").read_text()).get("_class", "TODO")
    function = "_" + re.sub(r"\W", "_", name)
    file_lines = "".join(f"        {file!r}: {digest!r},\n" for file, digest in files.items())
    return (
        f"def {function}():\n"
        f"    from {_class_module(class_name)} import {class_name}\n"
        f"    return {class_name}\n"
        f"\n\n"
        f"ModelEntry(\n"
        f"    name={name!r},\n"
        f"    model_class={function},\n"
        f"    files={{\n{file_lines}    }},\n"
        f"    licence={licence!r},\n"
        f"    data_terms={data_terms!r},\n"
        f"    retrain={retrain!r},\n"
        f"    repo_id={repo_id!r},\n"
        f"    revision={revision!r},\n"
        f"),\n"
    )
