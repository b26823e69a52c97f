"""``gdchaos cubic``: bifurcation data and Lyapunov exponents of the cubic gradient map (Appendix A).

Heavy imports (numpy, numba, h5py, rich) happen inside the handler so that ``gdchaos --help`` stays fast.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from gdchaos.cli import integer, number

if TYPE_CHECKING:
    from numpy.typing import NDArray

DEFAULT_ETAS = "0.01:2.0:2000"
_SUMMARY_ROWS = 11


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``cubic`` sub-command."""
    p = subparsers.add_parser(
        "cubic",
        help="bifurcation diagram and Lyapunov exponent of the 1-D cubic gradient map (paper Figs. 6-7)",
        description=(
            "Iterate f(w) = w[1 - eta (w^2 - 1)] (gradient descent on V(w) = (w^2 - 1)^2 / 4) from "
            "w0 ~ N(0, w0_std^2) for each eta, drop a transient, keep the next ITERATES states "
            "(bifurcation diagram) and average ln|f'(w_k)| = ln|1 + eta - 3 eta w_k^2| over ORBIT "
            "states (Lyapunov exponent). Orbits leaving |w| <= 1e6 are reported as escaped."
        ),
    )
    p.add_argument("--etas", default=DEFAULT_ETAS, metavar="START:STOP:N|log:START:STOP:N|E1,E2,...",
                   help=f"learning rates, all > 0 (default {DEFAULT_ETAS})")
    p.add_argument("--seed", type=integer, default=0, help="seed of the initial conditions (default 0)")
    p.add_argument("--w0-std", type=number, default=0.1, help="standard deviation of w0 (default 0.1)")
    p.add_argument("--transient", type=integer, default=1000, help="steps dropped before recording (default 1000)")
    p.add_argument("--iterates", type=integer, default=200, help="states kept for the bifurcation diagram (default 200)")
    p.add_argument("--orbit", type=integer, default=10_000,
                   help="states averaged for the Lyapunov exponent, after the transient (default 10000)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON list of {eta, lyapunov (null when escaped), escaped}")
    p.add_argument("-o", "--output", type=Path, metavar="FILE.h5", help="write all results to an HDF5 file")
    p.set_defaults(handler=run)


def _check_options(args: argparse.Namespace) -> None:
    """Range checks that argparse's types cannot express."""
    from gdchaos.checks import check_int, check_number

    for name, low in (("seed", 0), ("transient", 0), ("iterates", 1), ("orbit", 1)):
        check_int(f"--{name}", getattr(args, name), low)
    check_number("--w0-std", args.w0_std, 0)


def run(args: argparse.Namespace) -> int:
    """Handler of ``gdchaos cubic``."""
    import numpy as np

    from gdchaos.cubic import ESCAPE_BOUND, LOG_FLOOR, orbits
    from gdchaos.grid import parse_etas
    from gdchaos.store.cubic import write_cubic

    _check_options(args)
    etas = np.array(parse_etas(args.etas, "--etas"))
    params = {"seed": args.seed, "w0_std": args.w0_std, "transient": args.transient,
              "iterates": args.iterates, "orbit": args.orbit}
    lyap, escaped, bif = orbits(etas, **params)
    if args.output is not None:
        write_cubic(args.output, etas, lyap, escaped, bif,
                    dict(escape_bound=ESCAPE_BOUND, log_floor=LOG_FLOOR, **params))
    if args.json:
        records = [{"eta": float(e), "lyapunov": None if x else float(l), "escaped": bool(x)}
                   for e, l, x in zip(etas, lyap, escaped)]
        print(json.dumps(records, allow_nan=False))
    else:
        _print_summary(etas, lyap, escaped, args.output)
    return 0


def _print_summary(etas: NDArray, lyap: NDArray, escaped: NDArray, output: Path | None) -> None:
    """A table of evenly spaced etas (how many of all, said) and one summary line; lambda is -inf where
    every ln|f'(w_k)| was ln 0 (a superstable orbit: the sum is floored at LOG_FLOOR)."""
    import numpy as np
    from rich.console import Console

    from gdchaos.cli.table import TextTable, print_table
    from gdchaos.cubic import LOG_FLOOR

    chaotic = ~escaped & (lyap > 0)
    rows = np.unique(np.linspace(0, etas.size - 1, min(etas.size, _SUMMARY_ROWS)).round().astype(int))
    title = None if rows.size == etas.size else (f"{rows.size} of {etas.size} learning rates, evenly spaced "
                                                 "(all of them: --json or -o FILE.h5)")
    table = TextTable(["eta", "lambda", "regime"], title=title, align="lrl")
    for i in rows:
        regime = "escaped" if escaped[i] else "chaotic" if chaotic[i] else "regular"
        value = "-" if escaped[i] else "-inf" if lyap[i] <= LOG_FLOOR else f"{lyap[i]:+.4f}"
        table.add_row(f"{etas[i]:.4g}", value, regime)
    onset = f"onset of chaos at eta = {etas[chaotic].min():.4g}" if chaotic.any() else "no chaotic eta"
    console = Console()
    print_table(table, console)
    console.print(f"{etas.size} etas in [{etas.min():.4g}, {etas.max():.4g}]: {chaotic.sum()} chaotic "
                  f"(lambda > 0), {escaped.sum()} escaped; {onset}", highlight=False, soft_wrap=True)
    if output is not None:
        console.print(f"wrote {output}", highlight=False)
