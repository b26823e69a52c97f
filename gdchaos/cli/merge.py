"""``gdchaos merge PART... -o FILE``: join the files of a sharded sweep (``gdchaos run --shard K/N``)."""
from __future__ import annotations

import sys


def register(subparsers) -> None:
    """Add the merge sub-command."""
    parser = subparsers.add_parser(
        "merge", help="merge the files of a sharded sweep (run --shard K/N) into one results file",
        description="Check that the shard files come from one sweep and one dataset and do not overlap, copy "
                    "their finished units into a new file and analyse it. Units no shard finished stay "
                    "pending: rerun `gdchaos run` on the merged file to compute them. A single damaged "
                    "file (truncated, or chunks failing their checksums) is salvaged the same way: its "
                    "units that read back intact are copied, the others stay pending.")
    parser.add_argument("files", nargs="+", metavar="PART")
    parser.add_argument("-o", "--output", required=True, help="the merged results file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--quiet", action="store_true", help="print only the file name")
    parser.set_defaults(handler=_merge)


def _merge(args) -> int:
    from gdchaos.cli.table import print_summary
    from gdchaos.store.merge import merge

    merged = merge(args.files, args.output, overwrite=args.overwrite)
    for unit in merged.damaged:
        print(f"gdchaos: {unit} is damaged and stays pending", file=sys.stderr)
    print(merged.path)
    if not args.quiet:
        pending = merged.units_total - merged.units_copied
        print(f"{merged.units_copied}/{merged.units_total} units"
              + (f"; {pending} pending: rerun `gdchaos run` with this file as -o to compute them" if pending else ""))
        print_summary(merged.path)
    return 0
