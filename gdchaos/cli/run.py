"""``gdchaos run``, ``gdchaos presets`` and ``gdchaos config show``."""
from __future__ import annotations

import sys

from gdchaos.cli import execution, integer, number


def add_model_arguments(parser) -> None:
    """Where a config starts (preset or TOML file) and the data, model and numerics flags on top: run and find-lr."""
    parser.add_argument("--preset", help="start from a preset (see `gdchaos presets`); default iris-tanh")
    parser.add_argument("--config", help="start from a TOML file (see `gdchaos config show PRESET`)")
    parser.add_argument("--dataset")
    parser.add_argument("--data-dir")
    parser.add_argument("--hidden", help="hidden widths, e.g. 64 or 32,32")
    parser.add_argument("--activation", help="tanh, sigmoid or relu")
    parser.add_argument("--l2", type=number)
    parser.add_argument("--init-std", type=number)
    parser.add_argument("--eps", type=number)
    parser.add_argument("--perturb-biases", action="store_true", default=None)
    parser.add_argument("--seed", type=integer)
    parser.add_argument("--dtype")
    parser.add_argument("--memory-budget-mb", type=integer)


def register(subparsers) -> None:
    """Add the run, presets and config sub-commands."""
    run = subparsers.add_parser("run", help="run (or resume) a learning-rate sweep into an HDF5 file",
                                description="Run an eps-ball sweep over learning rates. Rerunning the same "
                                            "command continues the file.")
    run.add_argument("--headless", action="store_true",
                     help="progress as text instead of the TUI's live view (always so without a terminal, "
                          "with --quiet or when units run elsewhere)")
    add_model_arguments(run)
    run.add_argument("--etas", help="LIST (1,2.5,5) | START:STOP:N | log:START:STOP:N | auto[:N] (N learning rates "
                                    "centred on a find-lr onset, docs/find-lr.md)")
    run.add_argument("--find-lr", dest="find_lr",
                     help="with --etas auto: the file of `gdchaos find-lr -o` to centre on (default: probe now)")
    run.add_argument("--ics", type=integer, help="number of initial conditions q")
    run.add_argument("--replicas", type=integer, help="replicas M per initial condition")
    run.add_argument("--epochs", type=integer, help="T: distances recorded for t = 0..T")
    run.add_argument("--target", type=number, help="test accuracy that defines tau")
    run.add_argument("--tau-epochs", type=integer, help="epoch budget for tau (= --epochs: none past T)")
    run.add_argument("--sharpness-every", type=integer,
                     help="record the top Hessian eigenvalue of each reference every K epochs (0: off)")
    run.add_argument("--sharpness-subset", type=integer,
                     help="training samples used for sharpness (0: all)")
    run.add_argument("--save-trajectories", action="store_true", default=None,
                     help="store parameter vectors of references and replicas (large: size printed first)")
    run.add_argument("--trajectory-ics", help="which ICs to store, e.g. 0,3 or 0:10 (default all)")
    run.add_argument("--trajectory-every", type=integer, help="store every k-th epoch")
    run.add_argument("--trajectory-dtype", help="float64 (default) or float32 storage")
    run.add_argument("--tangent", action="store_true", default=None,
                     help="follow the first replica's perturbation in tangent space: ln ||Phi_t xi_1||_1, the "
                          "eps -> 0 limit of d_1(t) (docs/tangent.md)")
    run.add_argument("--tangent-k", type=integer,
                     help="top-K Lyapunov spectrum of each reference (K tangent vectors, QR; 0: off)")
    run.add_argument("--tangent-qr-every", type=integer, help="QR re-orthonormalisation of the spectrum every m epochs")
    run.add_argument("-o", "--output", help="results file (default: PRESET.h5 or a name from the config)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing file made with another config")
    run.add_argument("--quiet", action="store_true", help="print only the file name and the summary")
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan (units, networks, memory, file size, time) and run nothing")
    run.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    execution.add_arguments(run)
    run.set_defaults(handler=_run)

    presets = subparsers.add_parser("presets", help="list the paper's presets with size and estimated time")
    presets.set_defaults(handler=_presets)

    config = subparsers.add_parser("config", help="configuration files")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION")
    show = config_sub.add_parser("show", help="print a complete TOML config to start from")
    show.add_argument("preset", nargs="?", default="iris-tanh")
    show.set_defaults(handler=_config_show)
    config.set_defaults(handler=lambda args: config.print_help() or 0)


def config_from_args(args):
    """Preset or TOML file, then command-line flags on top."""
    from gdchaos import presets
    from gdchaos.config import from_dict, load_toml

    base = presets.get(args.preset or "iris-tanh")
    if args.config:
        base = load_toml(args.config, base)
    flags = {key: getattr(args, key) for key in (
        "dataset", "data_dir", "etas", "ics", "replicas", "eps", "perturb_biases", "epochs", "target",
        "tau_epochs", "seed", "dtype", "memory_budget_mb", "sharpness_every", "sharpness_subset",
        "save_trajectories", "trajectory_ics", "trajectory_every", "trajectory_dtype", "tangent", "tangent_k",
        "tangent_qr_every", "output")
        if getattr(args, key) is not None}
    model = {key: getattr(args, key) for key in ("hidden", "activation", "l2", "init_std")
             if getattr(args, key) is not None}
    if model:
        flags["model"] = model
    if args.dataset and not args.preset and not args.config and not args.output:
        flags["output"] = ""  # the iris-tanh default name would be misleading
    config = from_dict(flags, base)
    if "epochs" in flags and "tau_epochs" not in flags and config.tau_epochs < config.epochs:
        config = from_dict({"tau_epochs": config.epochs}, config)
    return config.validate()


def _run(args) -> int:
    from gdchaos import runner
    from gdchaos.cli.progress import LogReporter, RichReporter
    from gdchaos.backend.warm import kernels_cached
    from gdchaos.cli.table import print_summary

    execution.check(args)
    resolve_auto_etas(args)
    config = config_from_args(args)
    if args.dry_run:
        return _dry_run(config, args.json)
    if wants_live_view(args):
        return _run_in_tui(config, args.overwrite)
    if args.quiet:
        reporter = None
    elif sys.stdout.isatty():
        reporter = RichReporter()
    else:
        reporter = LogReporter()
    path = config.output or runner.default_output(config)
    if not args.quiet and not kernels_cached():
        print("compiling kernels (first run only: about 15 s for Iris, up to a minute for MNIST; "
              "later runs start at once)", flush=True)
        if reporter is not None:
            reporter.compiling = True
    try:
        with execution.executor(args) as executor:
            outcome = runner.run(config, overwrite=args.overwrite, reporter=reporter,
                                 announce=None if args.quiet else print, executor=executor,
                                 shard=execution.shard(args))
    except KeyboardInterrupt:
        print(f"gdchaos: stopped; {_state_after_stop(path)}", file=sys.stderr)
        return 130
    print(outcome.path)
    print_summary(outcome.path)
    if not args.quiet:
        print(next_steps(outcome.path))
    return 0


def resolve_auto_etas(args) -> None:
    """``--etas auto[:N]``: N learning rates centred on the onset of ``--find-lr FILE``, or of a find-lr
    probe of this config run now; ``args.etas`` becomes their list."""
    from gdchaos.errors import GdchaosError
    from gdchaos.grid import parse_auto

    count = parse_auto(args.etas, "--etas") if args.etas else None
    if count is None:
        if args.find_lr:
            raise GdchaosError(f"--find-lr: only with --etas auto or auto:N; got --etas {args.etas!r}")
        return
    from gdchaos.findlr import centred_etas, find_lr, stored_result

    if args.find_lr:
        result = stored_result(args.find_lr)
    else:
        args.etas = None
        quiet = args.quiet or args.json
        result = find_lr(config_from_args(args), announce=None if quiet else
                         (lambda text: print(f"find-lr: {text}", file=sys.stderr, flush=True)))
    etas = centred_etas(result, count)
    args.etas = ",".join(repr(eta) for eta in etas)
    if not (args.quiet or args.json):
        print(f"etas: {count} learning rates in [{etas[0]:.4g}, {etas[-1]:.4g}], centred on the find-lr onset "
              f"{result.suggestions.onset:.4g}", file=sys.stderr)


def _dry_run(config, as_json: bool) -> int:
    """Print the plan and whether it fits; exit 2 when the run would be refused."""
    import json

    from gdchaos import runner
    from gdchaos.engine.estimate import estimate_seconds
    from gdchaos.errors import GdchaosError
    from gdchaos.plan import check_affordable, plan
    from gdchaos.text import duration

    path = config.output or runner.default_output(config)
    layout = plan(config)
    values = {**layout.to_dict(), "estimated_seconds": round(estimate_seconds(config), 1), "output": str(path)}
    try:
        check_affordable(layout, path)
        refusal = None
    except GdchaosError as exc:
        refusal = str(exc)
    values["refused"] = refusal
    if as_json:
        print(json.dumps(values, indent=2))
    else:
        print(f"{path}: {values['units']:,} units, {values['networks']:,} networks "
              f"({values['unit_networks']:,} at once, {values['n_params']:,} parameters each)")
        print(f"peak memory about {values['peak_memory_mb']:,.0f} MB, file {values['file_mb']:,.1f} MB, "
              f"about {duration(values['estimated_seconds'])} on this machine")
        if refusal:
            print(f"gdchaos: error: {refusal}", file=sys.stderr)
    return 2 if refusal else 0


def next_steps(path) -> str:
    """The commands to try once a run has finished."""
    return (f"next:  gdchaos-tui {path}     browse the results (per-IC fits, charts)\n"
            f"       gdchaos plot {path}    the paper's figures (pip install 'gdchaos[plot]')\n"
            f"       gdchaos analyze {path} --json   the numbers for scripts")


def wants_live_view(args) -> bool:
    """`gdchaos run` without --headless, on a terminal, computing its units here: the TUI's live view."""
    here = not any(getattr(args, key, None) for key in ("workers", "scheduler", "cluster", "shard"))
    return not args.headless and not args.quiet and here and sys.stdin.isatty() and sys.stdout.isatty()


def _run_in_tui(config, overwrite: bool) -> int:
    """Start the run from the TUI (`gdchaos-tui --config ... --start`): its live view, its keys."""
    import os
    import subprocess
    import tempfile

    from gdchaos import runner
    from gdchaos.config import from_dict

    config = from_dict({"output": config.output or runner.default_output(config)}, config)
    handle, name = tempfile.mkstemp(prefix="gdchaos-run-", suffix=".toml")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(config.to_toml())
        command = [sys.executable, "-m", "gdchaos_tui.app", "--config", name, "--start"]
        code = subprocess.run(command + (["--overwrite"] if overwrite else [])).returncode
    finally:
        os.unlink(name)
    print(_state_after_stop(config.output))  # what the TUI left: finished, resumable or not created
    return code


def _state_after_stop(path: str) -> str:
    """What a stopped run left at ``path``, checked, never assumed."""
    from pathlib import Path

    from gdchaos import store
    from gdchaos.errors import GdchaosError

    if not Path(path).exists():
        return f"{path} was not created yet: rerun the same command to start"
    try:
        with store.open(path) as results:
            done, total = results.progress()
    except GdchaosError as exc:
        return f"{exc}"
    if done == total:
        return f"{path}: finished ({total} units)\n{next_steps(path)}"
    return f"{path} is consistent ({done} of {total} units done): rerun the same command to resume"


def _presets(args) -> int:
    from rich.console import Console

    from gdchaos import presets
    from gdchaos.cli.table import TextTable, print_table
    from gdchaos.engine.estimate import (BACKGROUND_ENV, estimate_seconds, network_size, refresh_in_background,
                                         stale)
    from gdchaos.text import duration

    table = TextTable(["preset", "figure / network", "params", "networks", "est. time"], align="ll",
                      title="gdchaos presets (estimated time on this machine)")
    measuring = []
    for name in presets.names():
        config = presets.get(name)
        params = network_size(config)
        networks = len(config.etas) * config.ics * (config.replicas + 1)
        seconds = estimate_seconds(config, measure=False)  # from the stored calibration: no waiting
        if stale(config):
            measuring.append(name)
        table.add_row(name, presets.describe(name), f"{params:,}", f"{networks:,}",
                      "measuring…" if seconds is None else duration(seconds))
    console = Console()
    print_table(table, console)
    if measuring and not refresh_in_background(measuring):
        console.print(f"{len(measuring)} network(s) not timed on this machine yet ({BACKGROUND_ENV}=0)",
                      highlight=False, soft_wrap=True)
    elif measuring:
        console.print(f"timing {len(measuring)} network(s) on this machine in the background (about a minute, "
                      "once): run `gdchaos presets` again for their estimates", highlight=False, soft_wrap=True)
    return 0


def _config_show(args) -> int:
    from gdchaos import presets

    sys.stdout.write(presets.get(args.preset).to_toml())
    return 0
