"""The per-eta summary as a Rich table (end of a run, `gdchaos analyze`)."""
from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gdchaos.text import number


def all_diverged(row: dict) -> bool:
    """Every initial condition of this learning rate diverged: it has no lambda_nMLE."""
    return bool(row.get("n_ic")) and row.get("n_diverged") == row["n_ic"]


def summary_table(rows: list[dict], title: str) -> Table:
    """Rows with eta, lambda_mean/std, rho, tau_mean/std/median, n_reached, n_ic, n_diverged; lambda
    reads "diverged" where every initial condition diverged. With tangent curves, lambda_tangent
    +- std and rho_tangent beside lambda_nMLE (docs/tangent.md)."""
    table = Table(title=title)
    sharpness = any(row.get("sharpness_late_median") is not None for row in rows)
    tangent = any(row.get("lambda_tangent_mean") is not None for row in rows)
    columns = ["eta", "lambda_nMLE", "± std", "rho %"]
    columns += ["lambda_tangent", "± std", "rho_t %"] if tangent else []
    columns += ["<tau>", "± std", "median", "reached", "diverged"]
    for column in columns + (["sharpness", "2/eta"] if sharpness else []):
        table.add_column(column, justify="right")
    for row in rows:
        lam = "diverged" if all_diverged(row) else number(row["lambda_mean"])
        cells = [f"{row['eta']:.4g}", lam, number(row["lambda_std"], 2), number(row["rho"], 3)]
        if tangent:
            cells += [number(row.get("lambda_tangent_mean")), number(row.get("lambda_tangent_std"), 2),
                      number(row.get("rho_tangent"), 3)]
        cells += [number(row["tau_mean"], 4), number(row["tau_std"], 3),
                 number(row["tau_median"], 4),
                 f"{row['n_reached']}/{row['n_ic']}" if row["n_ic"] else "-",
                 "-" if row.get("n_diverged") is None else str(row["n_diverged"])]
        if sharpness:
            cells += [number(row.get("sharpness_late_median")), number(2.0 / row["eta"])]
        table.add_row(*cells)
    return table


def rows_from_file(path: str | Path) -> list[dict]:
    """Stored summary rows of a results file (learning rates not analysed yet have NaN)."""
    from gdchaos import store

    with store.open(path) as handle:
        summary = handle.summary()
    rows = []
    for e, eta in enumerate(summary["eta"]):
        row = {name: float(values[e]) for name, values in summary.items()}
        for name in ("n_reached", "n_ic", "n_diverged"):
            row[name] = None if math.isnan(row[name]) else int(row[name])
        for name in ("sharpness_late_median", "lambda_tangent_mean", "lambda_tangent_std", "rho_tangent"):
            if name in row and math.isnan(row[name]):
                row[name] = None
        row["eta"] = float(eta)
        rows.append(row)
    return rows


def divergence_note(rows: list[dict]) -> str | None:
    """One line naming the learning rates where every initial condition diverged (None: there are none)."""
    etas = [f"{row['eta']:.4g}" for row in rows if all_diverged(row)]
    if not etas:
        return None
    return (f"{len(etas)} learning rate(s) diverged for every initial condition (no lambda_nMLE): "
            + ", ".join(etas))


def print_summary(path: str | Path, console: Console | None = None) -> None:
    """Print the stored summary table of a results file, and which learning rates diverged."""
    console = console or Console()
    rows = rows_from_file(path)
    console.print(summary_table(rows, title=str(path)))
    note = divergence_note(rows)
    if note:
        console.print(note)
