"""``gdchaos data``: list, fetch, check and locate datasets."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from gdchaos.cli import number
from gdchaos.data.limits import FETCH_TIMEOUT_S, READ_TIMEOUT_S

if TYPE_CHECKING:
    from pathlib import Path

    from gdchaos.data.registry import DatasetSpec


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` sub-command and its actions to the top-level parser."""
    parser = subparsers.add_parser(
        "data", help="list, fetch, check and locate datasets",
        description="Datasets live in <folder>/<name>/, the folder being --data-dir, else "
                    "$GDCHAOS_DATA, else $XDG_CACHE_HOME/gdchaos (~/.cache/gdchaos).")
    parser.set_defaults(handler=lambda args: _print_help(parser))
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")

    listing = actions.add_parser("list", help="the datasets, their sizes and whether they are here")
    fetching = actions.add_parser("fetch", help="download a dataset, verifying its checksums")
    fetching.add_argument("name", metavar="NAME")
    fetching.add_argument("--timeout", type=number, default=FETCH_TIMEOUT_S, metavar="SECONDS",
                          help=f"give up after this long in all (default {FETCH_TIMEOUT_S:g}; a "
                               f"mirror that sends nothing is left after {READ_TIMEOUT_S:g} s)")
    checking = actions.add_parser("check", help="verify and load a dataset; print its shapes")
    checking.add_argument("name", metavar="NAME")
    locating = actions.add_parser("path", help="print the data folder, or a dataset's folder")
    locating.add_argument("name", metavar="NAME", nargs="?")
    for action, handler in ((listing, _list), (fetching, _fetch), (checking, _check),
                            (locating, _path)):
        action.add_argument("--data-dir", metavar="DIR", help="the data folder to use")
        action.set_defaults(handler=handler)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _list(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gdchaos.cli.table import TextTable, print_table
    from gdchaos.data import data_root, dataset_dir, dataset_spec, names

    table = TextTable(["name", "train", "test", "features", "classes", "here"], align="lrrrrl",
                      title="gdchaos datasets")
    for name in names():
        spec = dataset_spec(name)
        table.add_row(name, str(spec.train), str(spec.test), str(spec.features), str(spec.classes),
                      _availability(spec, dataset_dir(name, args.data_dir)))
    console = Console()
    print_table(table, console)
    console.print(f"data folder: {data_root(args.data_dir)}", highlight=False, soft_wrap=True)
    return 0


def _availability(spec: DatasetSpec, folder: Path) -> str:
    if spec.bundled:
        return "bundled (scikit-learn)"
    present = sum((folder / file.name).is_file() for file in spec.files.values())
    if present == len(spec.files):
        return "yes"
    return "no" if present == 0 else f"partial ({present}/{len(spec.files)})"


def _fetch(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeElapsedColumn, TransferSpeedColumn)

    from gdchaos.data import dataset_spec, fetch

    spec = dataset_spec(args.name)
    if spec.bundled:
        print(f"{args.name} ships with scikit-learn; there is nothing to fetch")
        return 0
    console = Console(stderr=True)
    bar = (Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeElapsedColumn(), console=console)
           if console.is_terminal else None)  # no progress lines in logs or pipes
    tasks: dict[str, int] = {}

    def show(file_name: str, done: int, total: int | None) -> None:
        if file_name not in tasks:
            tasks[file_name] = bar.add_task(file_name, total=total)
        bar.update(tasks[file_name], completed=done, total=total)

    with bar or nullcontext():
        folder = fetch(args.name, args.data_dir, progress=show if bar else None,
                       timeout=args.timeout)
    print(f"{args.name}: verified in {folder}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from gdchaos.data import fingerprint, load

    arrays = load(args.name, args.data_dir)
    shapes = ", ".join(f"{part} {array.shape}" for part, array in
                       zip(("x_train", "y_train", "x_test", "y_test"), arrays))
    print(f"{args.name}: {shapes}; fingerprint {fingerprint(*arrays)}")
    return 0


def _path(args: argparse.Namespace) -> int:
    from gdchaos.data import data_root, dataset_dir, dataset_spec
    from gdchaos.errors import DataError

    if args.name is None:
        print(data_root(args.data_dir))
        return 0
    if dataset_spec(args.name).bundled:
        raise DataError(f"{args.name} ships with scikit-learn and has no data folder")
    print(dataset_dir(args.name, args.data_dir))
    return 0
