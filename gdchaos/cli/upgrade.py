"""``gdchaos upgrade FILE...``: rewrite results files of an older format version as the current one, in place."""
from __future__ import annotations


def register(subparsers) -> None:
    """Add the upgrade sub-command."""
    parser = subparsers.add_parser(
        "upgrade", help="rewrite results files of an older format version as the current one, in place",
        description="Rewrite each results file in the current format (every axis named, docs/results-format.md): "
                    "a new file is written beside it, read back and compared, then renamed over it. A file "
                    "a run is writing is refused; a file in the current format is left as it is.")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.set_defaults(handler=_upgrade)


def _upgrade(args) -> int:
    from gdchaos.store.format import FORMAT_VERSION
    from gdchaos.store.upgrade import upgrade

    for path in args.files:
        version = upgrade(path)
        if version == FORMAT_VERSION:
            print(f"{path}: format version {version} already")
        else:
            print(f"{path}: format version {version} -> {FORMAT_VERSION}")
    return 0
