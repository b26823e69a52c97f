"""``gdchaos find-lr``: locate the onset of chaos with a short probe and suggest the learning rate."""
from __future__ import annotations

import sys

from gdchaos.cli import integer, number
from gdchaos.cli.run import add_model_arguments

MODEL_FLAGS = ("dataset", "data_dir", "hidden", "activation", "l2", "init_std", "replicas", "eps", "perturb_biases",
               "target", "tau_epochs", "seed", "dtype", "memory_budget_mb", "sharpness_subset")
RUN_ONLY = ("etas", "sharpness_every", "save_trajectories", "trajectory_ics", "trajectory_every",
            "trajectory_dtype", "tangent", "tangent_k", "tangent_qr_every", "output", "ics", "epochs")
BAR = 20  # characters of the rho bar at 100%


def register(subparsers) -> None:
    """Add the find-lr sub-command."""
    parser = subparsers.add_parser(
        "find-lr", help="locate the onset of chaos and suggest the learning rate (a short probe)",
        description="Bracket the learning rate between 2/lambda_max(theta_0) and divergence, scan it with the same "
                    "initial conditions at every eta, bisect where rho crosses the target and name the suggestions "
                    "(docs/find-lr.md).")
    add_model_arguments(parser)
    parser.add_argument("--replicas", type=integer, help="replicas per ball (method ball)")
    parser.add_argument("--target", type=number, help="test accuracy of tau (--validate)")
    parser.add_argument("--tau-epochs", type=integer, help="epoch budget of tau (--validate)")
    parser.add_argument("--sharpness-subset", type=integer,
                        help="training samples for lambda_max(theta_0) (0: all; a few thousand suffice on MNIST)")
    parser.add_argument("--ics", type=integer, default=8, help="initial conditions of the scan (default 8)")
    parser.add_argument("--epochs", type=integer, default=100, help="epochs of every probe (default 100)")
    parser.add_argument("--method", default="tangent", help="tangent (default) or ball")
    parser.add_argument("--target-rho", type=number, default=0.5,
                        help="share of chaotic ICs that defines the onset (default 0.5)")
    parser.add_argument("--refine", type=integer, default=2, help="bisection rounds (default 2; 0: none)")
    parser.add_argument("--points", type=integer, default=12, help="learning rates of the scan (default 12)")
    parser.add_argument("--validate", action="store_true",
                        help="train to the target accuracy at onset x 0.7, 1, 1.4 and report tau")
    parser.add_argument("-o", "--output", help="keep the scan (results file) and the result in this HDF5 file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file made with another config")
    parser.add_argument("--json", action="store_true", help="the result as JSON (rows, suggestions, notes)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(handler=_find_lr)


def probe_base(args):
    """The config find-lr probes: preset or TOML file, then the model and data flags."""
    from argparse import Namespace

    from gdchaos.cli.run import config_from_args

    values = {name: getattr(args, name) for name in (*MODEL_FLAGS, "preset", "config")}
    values.update({name: None for name in RUN_ONLY})
    return config_from_args(Namespace(**values))


def _find_lr(args) -> int:
    from gdchaos.cli.progress import LogReporter
    from gdchaos.findlr import find_lr

    config = probe_base(args)
    quiet = args.quiet or args.json
    announce = None if quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    result = find_lr(config, method=args.method, ics=args.ics, epochs=args.epochs, target_rho=args.target_rho,
                     refine=args.refine, points=args.points, validate=args.validate, output=args.output,
                     overwrite=args.overwrite, announce=announce, reporter=None if quiet else LogReporter(sys.stderr))
    if args.json:
        print(result.to_json())
    else:
        print_result(result)
    return 0


def print_result(result) -> None:
    """The rows (with a bar of rho), the suggestions and the notes, as text."""
    from gdchaos.text import duration, number as short

    marks = {}
    for name, value in vars(result.suggestions).items():
        if value is not None:
            marks.setdefault(value, []).append(name)
    print(f"{'eta':>10} {'ICs':>4} {'rho %':>6} {'95% (Wilson)':>14} {'lambda':>9} {'± std':>8} "
          f"{'diverged':>8}  rho")
    for row in sorted(result.rows, key=lambda row: row.eta):
        bar = "#" * round(BAR * row.rho / 100)
        refined = f" (refine {row.round})" if row.round else ""
        names = " <- " + ", ".join(marks[row.eta]) if row.eta in marks else ""
        print(f"{row.eta:>10.4g} {row.ics:>4} {row.rho:>6.1f} {f'[{row.rho_low:.0f}, {row.rho_high:.0f}]':>14} "
              f"{short(row.lambda_mean):>9} {short(row.lambda_std, 2):>8} {100 * row.diverged:>7.0f}%  "
              f"{bar:<{BAR}}{refined}{names}")
    print(f"method {result.method}, target rho {100 * result.target_rho:g}%, {result.ics} ICs x {result.epochs} "
          f"epochs, bracket [{result.bracket[0]:.4g}, {result.bracket[1]:.4g}], {duration(result.seconds)}"
          + (f" (probe {duration(result.probe_seconds)}, validation {duration(result.seconds - result.probe_seconds)})"
             if result.validation else ""))
    for name, value in vars(result.suggestions).items():
        print(f"  {name:<12} {'not found' if value is None else f'{value:.4g}'}")
    for row in result.validation:
        tau = "not reached" if row["tau_mean"] is None else f"<tau> = {row['tau_mean']:.4g}"
        print(f"  validate: eta = {row['eta']:.4g} (onset x {row['factor']:g}): {tau} "
              f"({row['reached']}/{row['ics']} reached {row['target']:g} within {row['budget']} epochs)")
    for note in result.notes:
        print(f"note: {note}")
    if result.path:
        print(result.path)
