"""Find and verify the model folders listed in hub/registry.py (core/loading.py builds the models from them).

A model folder is looked for, in order:
  1. env        $FACELAB_CHECKPOINTS/<folder>/ (a folder of your own, e.g. fresh from training);
  2. bundled    checkpoints/<folder>/ in this repository;
  3. hub cache  the Hugging Face cache, at the entry's pinned commit (no network);
  4. hub        `hf_hub_download` of each listed file from `repo_id` at the pinned commit,
                unless HF_HUB_OFFLINE is set.
Every file is checked against the sha256 in the registry before it is used; the check is redone
whenever a file's size, mtime or inode changed since it was hashed (a stat per file on every
resolve), so a file swapped after the first check is refused too. A bad download is deleted from
the cache and refused; a mismatch is a `ChecksumMismatch`, never "not trained". Weights are safetensors,
read by `ConfigModule.from_pretrained` in core; nothing is unpickled.

huggingface_hub reads HF_ENDPOINT, HF_HOME/HF_HUB_CACHE and HF_HUB_OFFLINE once, at import;
`hf_options` reads them per call instead, so a process that changes them (tests, apps) is honoured.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

from hub import registry
from hub.registry import ModelEntry

ENV_VAR = "FACELAB_CHECKPOINTS"
BUNDLED_ROOT = Path(__file__).resolve().parents[1] / "checkpoints"
_TRUE = {"1", "ON", "YES", "TRUE"}

_lock = threading.Lock()          # guards _verified; held for lookups only, never while a file is hashed
_verified: dict[tuple[str, Path], tuple] = {}   # (name, folder) -> stat signature of its files when hashed


class ModelNotAvailable(RuntimeError):
    """The model's weights are nowhere to be found (or are not the ones the registry pins)."""


class ChecksumMismatch(ModelNotAvailable):
    """A file's sha256 differs from the registry's: the file is refused."""


def get_entry(name: str) -> ModelEntry:
    if name not in registry.MODELS:
        known = ", ".join(sorted(registry.MODELS)) or "none yet"
        raise ModelNotAvailable(f"Model {name!r} is not in hub/registry.py (registered: {known}); "
                                "it has probably not been trained yet.")
    return registry.MODELS[name]


def hf_options() -> dict:
    """Keyword arguments for huggingface_hub calls, from the environment as it is now."""
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        cache_dir = env["HF_HUB_CACHE"]
    elif env.get("HF_HOME"):
        cache_dir = os.path.join(env["HF_HOME"], "hub")
    else:
        cache_dir = constants.HF_HUB_CACHE
    offline = env.get("HF_HUB_OFFLINE")
    return {
        "endpoint": (env.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/"),
        "cache_dir": cache_dir,
        "local_files_only": constants.HF_HUB_OFFLINE if offline is None else offline.strip().upper() in _TRUE,
    }


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bad_files(entry: ModelEntry, folder: Path) -> dict[str, str]:
    """The listed files of `folder` whose sha256 is not the registry's: file name -> actual sha256."""
    digests = {file: sha256_file(folder / file) for file in entry.files}
    return {file: digest for file, digest in digests.items() if digest != entry.files[file]}


def describe_mismatch(entry: ModelEntry, folder: Path, bad: dict[str, str]) -> str:
    return "\n  ".join(f"{folder / file}: sha256 {digest}, registry expects {entry.files[file]}"
                       for file, digest in bad.items())


def local_folders(entry: ModelEntry, looked: list[str] | None = None) -> list[tuple[str, Path]]:
    """Every complete copy of the model on this machine, in resolution order, as (where, folder).

    No network. `looked` collects one line per place that had no complete copy.
    """
    looked = [] if looked is None else looked
    env = os.environ.get(ENV_VAR)
    candidates: list[tuple[str, Path | None]] = [
        ("env", Path(env) / entry.folder if env else None),
        ("bundled", BUNDLED_ROOT / entry.folder),
        ("hub cache", _cached_snapshot(entry)),
    ]
    found = []
    for where, folder in candidates:
        if folder is None:
            looked.append(_why_absent(entry, where))
            continue
        missing = [file for file in entry.files if not (folder / file).is_file()]
        if not missing:
            found.append((where, folder))
        elif not folder.is_dir():
            looked.append(f"{where}: {folder} does not exist")
        else:
            looked.append(f"{where}: {folder} lacks {', '.join(missing)}")
    return found


def _why_absent(entry: ModelEntry, where: str) -> str:
    if where == "env":
        return f"env: ${ENV_VAR}/{entry.folder} (${ENV_VAR} is not set)"
    if entry.repo_id is None:
        return "hub cache: no Hub repo recorded in hub/registry.py"
    return f"hub cache: {entry.repo_id}@{entry.revision} is not (fully) in {hf_options()['cache_dir']}"


def _cached_snapshot(entry: ModelEntry) -> Path | None:
    """The cache's snapshot folder if it holds every listed file at the pinned commit."""
    if entry.repo_id is None:
        return None
    cache_dir = hf_options()["cache_dir"]
    paths = [try_to_load_from_cache(entry.repo_id, file, cache_dir=cache_dir, revision=entry.revision)
             for file in entry.files]
    if not all(isinstance(path, str) for path in paths):
        return None
    return Path(paths[0]).parent


def _signature(entry: ModelEntry, folder: Path) -> tuple:
    """(file, size, mtime_ns, inode) of each listed file: what must not change between hashing and reading."""
    out = []
    for file in sorted(entry.files):
        st = os.stat(folder / file)
        out.append((file, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def _verify_once(entry: ModelEntry, where: str, folder: Path) -> Path:
    """Return `folder` if its files match the registry; a bad file from the Hub cache is deleted.

    Hashed again whenever a file's stat signature changed since the last good check."""
    signature = _signature(entry, folder)
    with _lock:
        if _verified.get((entry.name, folder)) == signature:
            return folder
    bad = bad_files(entry, folder)
    if bad:
        if where.startswith("hub"):
            for file in bad:
                _delete_cached(folder / file)
            advice = ("The bad files were deleted from the Hugging Face cache; "
                      "the Hub repo or mirror serves other bytes than the registry pins.")
        else:
            advice = (f"If you retrained {entry.name!r} on purpose, record the new hashes: "
                      f"`python -m hub hash {folder} --name {entry.name}` and paste them into hub/registry.py.")
        raise ChecksumMismatch(f"Refusing the {where} copy of model {entry.name!r}, sha256 mismatch:\n  "
                               f"{describe_mismatch(entry, folder, bad)}\n{advice}")
    with _lock:
        _verified[(entry.name, folder)] = signature
    return folder


def _delete_cached(pointer: Path) -> None:
    """Remove a snapshot file and the blob it links to, so the next pull downloads it again."""
    blob = Path(os.path.realpath(pointer))
    pointer.unlink(missing_ok=True)
    blob.unlink(missing_ok=True)


def download(entry: ModelEntry) -> Path:
    """Fetch every listed file from the Hub at the pinned commit (cache hits need no network); verify them."""
    if entry.repo_id is None:
        raise ModelNotAvailable(f"Model {entry.name!r} has no Hub repo in hub/registry.py; retrain it: {entry.retrain}")
    options = hf_options()
    try:
        paths = [Path(hf_hub_download(entry.repo_id, file, revision=entry.revision, **options))
                 for file in entry.files]
    except OSError as error:  # HTTP errors, missing entries, offline mode and connection failures
        reason = " ".join(str(error).split())
        raise ModelNotAvailable(f"hub: {entry.repo_id}@{entry.revision} from {options['endpoint']}: "
                                f"{type(error).__name__}: {reason}") from error
    return _verify_once(entry, "hub", paths[0].parent)


def resolve(name: str) -> Path:
    """The verified folder holding model `name`; downloads it from the Hub if no local copy exists."""
    entry = get_entry(name)
    looked: list[str] = []
    found = local_folders(entry, looked)
    if found:
        return _verify_once(entry, *found[0])
    if entry.repo_id is None:
        looked.append("hub: not published (no repo_id in hub/registry.py)")
    elif hf_options()["local_files_only"]:
        looked.append(f"hub: {entry.repo_id}@{entry.revision} not fetched: HF_HUB_OFFLINE is set")
    else:
        try:
            return download(entry)
        except ChecksumMismatch:
            raise
        except ModelNotAvailable as error:
            looked.append(str(error))
    raise ModelNotAvailable(
        f"Model {name!r} is not available. Looked in:\n  - " + "\n  - ".join(looked)
        + f"\nTo get it: `python -m hub pull {name}`, or set ${ENV_VAR} to a folder holding {entry.folder}/, "
        f"or retrain it: {entry.retrain}")


def available(name: str) -> bool:
    """Whether model `name` can be loaded without a download. Never raises (a copy that fails its sha256 check
    is not available: `verification_error` says why)."""
    try:
        entry = get_entry(name)
        found = local_folders(entry)
        if found:
            _verify_once(entry, *found[0])
        return bool(found)
    except (ModelNotAvailable, OSError):
        return False


def verification_error(name: str) -> str | None:
    """The ChecksumMismatch message if the local copy of `name` fails its sha256 check, else None (also when
    there is no local copy or no such model). No network."""
    try:
        entry = get_entry(name)
        found = local_folders(entry)
        if found:
            _verify_once(entry, *found[0])
    except ChecksumMismatch as e:
        return str(e)
    except (ModelNotAvailable, OSError):
        return None
    return None


def clear_cache() -> None:
    """Forget verified folders, so every file is hashed again (tests; after replacing files on disk)."""
    with _lock:
        _verified.clear()
