"""Command line of the checkpoint hub.

    python -m hub list                 name, where it resolves (env/bundled/hub cache/missing), size, licence
    python -m hub pull NAME            download NAME at its pinned commit into the Hugging Face cache
    python -m hub verify [NAME]        sha256 of every file of every local copy; exit 1 on a mismatch
    python -m hub hash FOLDER [--name NAME --repo-id ID --revision SHA]   registry lines to paste
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hub import registry, store
from hub.snippet import registry_entry_from_folder


def _size(entry: registry.ModelEntry, folder) -> str:
    total = sum((folder / file).stat().st_size for file in entry.files)
    return f"{total / 2**20:.1f} MiB"


def cmd_list(args) -> int:
    if not registry.MODELS:
        print("no models registered yet (hub/registry.py)")
    for name, entry in sorted(registry.MODELS.items()):
        found = store.local_folders(entry)
        where, size = (found[0][0], _size(entry, found[0][1])) if found else ("missing", "-")
        print(f"{name:<16} {where:<10} {size:>10}  {entry.licence}")
    return 0


def cmd_pull(args) -> int:
    try:
        folder = store.download(store.get_entry(args.name))
    except store.ModelNotAvailable as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{args.name}: {folder}")
    return 0


def cmd_verify(args) -> int:
    names = [args.name] if args.name else sorted(registry.MODELS)
    status = 0
    for name in names:
        try:
            entry = store.get_entry(name)
        except store.ModelNotAvailable as error:
            print(error, file=sys.stderr)
            return 1
        found = store.local_folders(entry)
        if not found:
            print(f"{name}: missing")
            status = 1 if args.name else status  # a model asked for by name must be there
        for where, folder in found:
            bad = store.bad_files(entry, folder)
            print(f"{name}: {where} {folder}: "
                  + ("ok" if not bad else "SHA256 MISMATCH\n  " + store.describe_mismatch(entry, folder, bad)))
            status = 1 if bad else status
    return status


def cmd_hash(args) -> int:
    name = args.name or Path(args.folder).resolve().name
    print(registry_entry_from_folder(name, args.folder, repo_id=args.repo_id, revision=args.revision,
                                     licence=args.licence, data_terms=args.data_terms, retrain=args.retrain))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list").set_defaults(run=cmd_list)
    pull = commands.add_parser("pull")
    pull.add_argument("name")
    pull.set_defaults(run=cmd_pull)
    verify = commands.add_parser("verify")
    verify.add_argument("name", nargs="?")
    verify.set_defaults(run=cmd_verify)
    hash_ = commands.add_parser("hash")
    hash_.add_argument("folder")
    hash_.add_argument("--name", help="model name (default: the folder's name)")
    hash_.add_argument("--repo-id")
    hash_.add_argument("--revision")
    hash_.add_argument("--licence", default="TODO")
    hash_.add_argument("--data-terms", default="TODO")
    hash_.add_argument("--retrain", default="TODO")
    hash_.set_defaults(run=cmd_hash)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
