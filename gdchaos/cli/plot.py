"""``gdchaos plot``: the paper's figures from results files and ``gdchaos cubic`` files (docs/plots.md).

matplotlib is imported inside the handler, so ``gdchaos --help`` stays fast and works without it.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gdchaos.cli import integer
from gdchaos.errors import GdchaosError

if TYPE_CHECKING:
    import numpy as np

    from gdchaos.plot import Run

KINDS = ("sweep", "distances", "loss", "sharpness", "cubic")
FORMATS = ("png", "pdf", "svg")
_MISSING_MATPLOTLIB = "plotting needs matplotlib: pip install 'gdchaos[plot]'"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``plot`` sub-command."""
    p = subparsers.add_parser(
        "plot", help="the paper's figures from results files (and `gdchaos cubic -o` files)",
        description=(
            "Write figures: sweep (lambda_nMLE, rho, <tau> against eta; several files overlaid), "
            "distances (d(t) of every eps-ball at one eta, with the histogram of local exponents), "
            "loss (training loss for three etas), sharpness (with 2/eta; files that have it) and "
            "cubic (bifurcation diagram and lambda of a `gdchaos cubic -o` file)."))
    p.add_argument("files", nargs="+", type=Path, metavar="FILE.h5")
    p.add_argument("-o", "--output-dir", type=Path, default=Path("."), metavar="DIR",
                   help="folder for the figures (created if needed; default: current folder)")
    p.add_argument("--format", choices=FORMATS, default="png", help="image format (default png)")
    p.add_argument("--dpi", type=integer, default=150, help="resolution of png figures (default 150)")
    p.add_argument("--kind", default=",".join(KINDS), metavar="KIND[,KIND...]",
                   help=f"figures to make, of {', '.join(KINDS)} (default: all that apply)")
    p.add_argument("--etas", metavar="E1,E2,...",
                   help="learning rates for distances (one figure each), loss and sharpness (one panel each); "
                        "default: the eta of largest lambda_nMLE; 0.01,7.5,20 or smallest, middle, largest; "
                        "those with sharpness data")
    p.add_argument("--ics", metavar="I,J,A:B",
                   help="initial conditions (0-based; A:B means A..B-1) for distances, loss and sharpness "
                        "(default: all; IC 0 for loss)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``gdchaos plot``: print the path of every figure written."""
    from gdchaos.checks import check_int
    from gdchaos.grid import parse_etas

    kinds = _parse_kinds(args.kind)
    etas = None if args.etas is None else list(parse_etas(args.etas, "--etas"))
    check_int("--dpi", args.dpi, 10)
    try:
        import matplotlib
    except ImportError:
        raise GdchaosError(_MISSING_MATPLOTLIB) from None
    matplotlib.use("Agg")
    from gdchaos import plot

    with contextlib.ExitStack() as stack:
        runs, cubics = _open_files(args.files, stack)
        figures = _figures(runs, cubics, kinds, etas, args.ics)
        if not figures:
            raise GdchaosError(f"nothing to plot: no {'/'.join(kinds)} figure applies to these files")
        try:
            args.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GdchaosError(f"-o: cannot create {args.output_dir}: {exc.strerror or exc}") from None
        for name, build in figures:
            path = args.output_dir / f"{name}.{args.format}"
            figure = build()
            try:
                plot.save(figure, path, dpi=args.dpi)
            except OSError as exc:
                raise GdchaosError(f"-o: cannot write {path}: {exc.strerror or exc}") from None
            print(path)
    return 0


def _figures(runs: list[Run], cubics: list[Any], kinds: list[str], etas: list[float] | None,
             ics_text: str | None) -> list[tuple[str, Any]]:
    """(file name without extension, zero-argument builder) of every figure to write."""
    from gdchaos import plot

    figures: list[tuple[str, Any]] = []
    if "sweep" in kinds and runs:
        for r in runs:
            if not r.has_summary():
                _note(f"{r.results.path}: no learning rate finished yet; left out of the sweep figure")
        ready = [r for r in runs if r.has_summary()]
        if ready:
            name = f"{ready[0].name}_sweep" if len(ready) == 1 else "sweep_overlay"
            figures.append((name, lambda: plot.sweep_figure(ready)))
    for r in runs:
        ics = _parse_ics(ics_text, r)
        chosen = None if etas is None else _find_etas(r, etas)
        if "distances" in kinds:
            for e in chosen or [plot.pick_distance_eta(r)]:
                if e is None or not r.has_data("distances", e):
                    _note(f"{r.results.path}: no distances recorded yet"
                          + ("" if e is None else f" at eta {r.eta[e]:g}") + "; distances figure skipped")
                    continue
                figures.append((f"{r.name}_distances_eta{r.eta[e]:g}",
                                lambda r=r, e=e, ics=ics: plot.distances_figure(r, e, ics)))
        if "loss" in kinds:
            es = [e for e in chosen or plot.pick_loss_etas(r) if r.has_data("loss", e)]
            if es:
                first = ics if ics_text is not None else ics[:1]  # one trajectory per eta, as in Fig. 1
                figures.append((f"{r.name}_loss", lambda r=r, es=es, ics=first: plot.loss_figure(r, es, ics)))
            else:
                _note(f"{r.results.path}: no loss recorded yet at the chosen etas; loss figure skipped")
        if "sharpness" in kinds:
            if not r.has_sharpness:
                _note(f"{r.results.path}: no sharpness data (datasets sharpness, sharpness_epochs); "
                      "sharpness figure skipped")
            elif es := [e for e in chosen or plot.pick_sharpness_etas(r) if r.has_data("sharpness", e)]:
                figures.append((f"{r.name}_sharpness",
                                lambda r=r, es=es, ics=ics: plot.sharpness_figure(r, es, ics)))
            else:
                _note(f"{r.results.path}: no sharpness values at the chosen etas; sharpness figure skipped")
    if "cubic" in kinds:
        for c in cubics:
            figures.append((f"{c.path.stem}_cubic", lambda c=c: plot.cubic_figure(c)))
    return figures


def _note(text: str) -> None:
    print(f"gdchaos: note: {text}", file=sys.stderr)


def _open_files(paths: list[Path], stack: contextlib.ExitStack) -> tuple[list[Run], list[Any]]:
    """Results files as plot.Run, ``gdchaos cubic`` files as store.cubic.CubicFile, in the order given."""
    from gdchaos import plot, store
    from gdchaos.store.cubic import is_cubic, read_cubic
    from gdchaos.store.verify import check_size

    runs, cubics = [], []
    for path in paths:
        if not path.is_file():
            raise GdchaosError(f"{path}: no such file")
        check_size(path)  # a truncated file is named as such, not as unreadable
        try:
            with store.open_handle(path) as handle:
                if is_cubic(handle):
                    cubics.append(read_cubic(handle, path))
                    continue
        except (OSError, ValueError, RuntimeError):
            raise GdchaosError(f"{path}: not a readable HDF5 file") from None
        runs.append(plot.load_run(stack.enter_context(store.open(path))))
    return runs, cubics


def _parse_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise GdchaosError(f"--kind: unknown {', '.join(unknown) or repr(text)}; allowed: {', '.join(KINDS)}")
    return kinds


def _find_etas(r: Run, etas: list[float]) -> list[int]:
    from gdchaos import plot

    try:
        return plot.find_etas(r, etas)
    except ValueError as exc:
        raise GdchaosError(f"--etas: {exc}") from None


def _parse_ics(text: str | None, r: Run) -> np.ndarray:
    """Initial-condition indices of ``text`` (the index grammar of :mod:`gdchaos.grid`), all by default."""
    import numpy as np

    from gdchaos.grid import parse_indices

    q = r.results.config.ics
    chosen = parse_indices("all" if text is None else text, "--ics", q)
    if not chosen:
        raise GdchaosError(f"--ics: {text!r} selects no initial condition of {r.results.path}; use indices 0..{q - 1}")
    return np.array(list(dict.fromkeys(chosen)))
