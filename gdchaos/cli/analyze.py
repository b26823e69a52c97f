"""``gdchaos analyze FILE...``: refit lambda_nMLE, rho and tau from results files (ours or the authors')."""
from __future__ import annotations

import json
import sys
from dataclasses import fields

from gdchaos.cli import integer, number

# command-line flag -> FitParams field, with the type argparse converts to
FIT_OPTIONS = {
    "min_start": integer, "sat_frac": number, "sat_hold": integer, "slope_halfwidth": integer, "min_len": integer,
    "segment_penalty": number, "estimator": str, "r2_min": number, "lambda_min": number, "n_boot": integer,
    "ci_level": number,
}


def register(subparsers) -> None:
    """Add the analyze sub-command."""
    parser = subparsers.add_parser(
        "analyze", help="lambda_nMLE, rho and tau per learning rate from results files (and lambda_tangent)",
        description="Refit every complete learning rate of gdchaos results files, or of the authors' per-eta "
                    "files (dataset 'weights'), with the fit options given (defaults: the file's config).")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--json", action="store_true", help="print a JSON list of per-eta objects")
    parser.add_argument("--norm", default="l1",
                        help="distance between replicas: l1 (recorded online) or l2 (recomputed from stored "
                             "trajectories: needs --save-trajectories for every IC and epoch)")
    group = parser.add_argument_group("fit options (docs/analysis.md)")
    for name, kind in FIT_OPTIONS.items():
        group.add_argument("--" + name.replace("_", "-"), type=kind, default=None, dest=name)
    parser.add_argument("--fit-seed", type=integer, default=None, help="seed of the bootstrap intervals")
    parser.set_defaults(handler=_analyze)


def _fit_params(args, stored: dict):
    from gdchaos.analysis import FitParams

    values = dict(stored)
    values.update({name: getattr(args, name) for name in FIT_OPTIONS if getattr(args, name) is not None})
    if args.fit_seed is not None:
        values["seed"] = args.fit_seed
    known = {f.name for f in fields(FitParams)}
    return FitParams.from_mapping({key: value for key, value in values.items() if key in known})


def analyse_path(path: str, args) -> list[dict]:
    """Per-eta rows (JSON-safe dicts) of one file, ours or the authors'."""
    import numpy as np

    from gdchaos import store
    from gdchaos.analysis import TANGENT_SUMMARY_FIELDS, analyse_arrays
    from gdchaos.analysis.authors import is_authors_file, read_authors_file
    from gdchaos.errors import GdchaosError

    if is_authors_file(path):
        eta, distances, attrs = read_authors_file(path)
        params = _fit_params(args, {})
        rows = []
        for index in range(distances.shape[0]):
            summaries, _ = analyse_arrays(np.array([eta]), distances[index:index + 1], None, params)
            row = summaries[0].to_json_dict()
            row.update(file=str(path), source="authors", eps_index=index,
                       epsilon=_scalar(attrs.get("epsilon"), index))
            rows.append(row)
        return rows
    try:
        run = store.open(path)
    except (store.DamagedFile, store.UntrustedFile):
        raise
    except GdchaosError:
        raise GdchaosError(f"{path}: neither a gdchaos results file nor an authors' file (dataset 'weights')") from None
    with run:
        config = run.config
        params = _fit_params(args, config.analysis)
        analysis = run.analysis(params, refit=True, distances=_distances(run, config, args.norm))
        has_sharpness = "sharpness" in run.file
    tangent = [name for name in TANGENT_SUMMARY_FIELDS if name in analysis.summary]
    rows = []
    for e, (eta, summary) in enumerate(zip(config.etas, analysis.summaries)):
        row = {"eta": eta, "complete": False} if summary is None else {**summary.to_json_dict(), "complete": True}
        row.update(file=str(path), source="gdchaos")
        if has_sharpness and analysis.complete[e]:
            row.update(sharpness_late_median=_finite(analysis.summary["sharpness_late_median"][e]),
                       two_over_eta=2.0 / eta)
        if analysis.complete[e]:
            row.update({name: _finite(analysis.summary[name][e]) for name in tangent})
        rows.append(row)
    return rows


def _distances(run, config, norm: str):
    """None for the online L1 distances, else distances in ``norm`` recomputed from complete trajectories."""
    from gdchaos.errors import GdchaosError

    if norm == "l1":
        return None  # the online distances
    if not config.save_trajectories or config.trajectory_every != 1 or len(config.trajectory_ic_list()) != config.ics:
        raise GdchaosError(f"--norm {norm}: {run.path} needs trajectories of every IC at every epoch "
                           "(run with --save-trajectories and no --trajectory-ics/--trajectory-every)")
    return run.recompute_distances(norm)


def _finite(value: float) -> float | None:
    return float(value) if value == value else None


def _scalar(value, index):
    """The index-th epsilon when the authors stored one per ball, else the value itself."""
    if isinstance(value, (list, tuple)):
        return value[index] if index < len(value) else None
    return value


def _analyze(args) -> int:
    from rich.console import Console

    from gdchaos.checks import check_choice
    from gdchaos.cli.table import divergence_note, summary_table
    from gdchaos.store.reader import NORMS

    check_choice("--norm", args.norm, NORMS)
    rows = [row for path in args.files for row in analyse_path(path, args)]
    if args.json:
        json.dump(rows, sys.stdout, indent=1, allow_nan=False)
        print()
        return 0
    console = Console()
    for path in args.files:
        mine = [row for row in rows if row["file"] == str(path)]
        complete = [row for row in mine if row.get("complete", True)]
        console.print(summary_table(complete, title=str(path)))
        note = divergence_note(complete)
        if note:
            console.print(note)
        missing = len(mine) - len(complete)
        if missing:
            console.print(f"{missing} learning rate(s) not complete yet")
    return 0
