"""Tables the command line prints (the per-eta summary at the end of a run and in `gdchaos analyze`,
presets, the cubic map): a Rich table on a terminal wide enough for every cell, else plain aligned
text, so that no number is ever cut in a pipe, a log or a narrow terminal."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from gdchaos.text import number

GAP = "  "  # between the columns of plain text


class TextTable:
    """Title, column names and rows of strings; printed by :func:`print_table`.

    Printed directly (``console.print``) it renders the same way, but Rich then crops plain lines
    wider than the console; :func:`print_table` never cuts them.
    """

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[str]] = (), *, title: str | None = None,
                 align: str = "") -> None:
        self.columns = list(columns)
        self.rows = [list(row) for row in rows]
        self.title = title
        self.align = align.ljust(len(self.columns), "r")  # per column: "l" (words) or "r" (numbers)

    def add_row(self, *cells: str) -> None:
        self.rows.append(list(cells))

    def rich(self) -> Table:
        """The table with Rich's borders."""
        table = Table(title=self.title)
        for k, column in enumerate(self.columns):
            table.add_column(column, justify="left" if self.align[k] == "l" else "right")
        for row in self.rows:
            table.add_row(*row)
        return table

    def plain(self) -> str:
        """Aligned text, one line per row, no cell ever cut."""
        widths = [max(len(cell) for cell in column) for column in zip(self.columns, *self.rows)]
        lines = [self.title] if self.title else []
        for row in (self.columns, *self.rows):
            cells = [cell.ljust(width) if self.align[k] == "l" else cell.rjust(width)
                     for k, (cell, width) in enumerate(zip(row, widths))]
            lines.append(GAP.join(cells).rstrip())
        return "\n".join(lines)

    def fits(self, console: Console, width: int | None = None) -> bool:
        """Rich can draw it on ``console`` (a terminal) without shortening a cell."""
        if not console.is_terminal:
            return False
        unbounded = console.options.update_width(1 << 16)  # its natural width, not clamped to the console
        return console.measure(self.rich(), options=unbounded).maximum <= (width or console.width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.fits(console, options.max_width):
            yield self.rich()
        else:
            yield Text(self.plain(), no_wrap=True, overflow="ignore")


def print_table(table: TextTable, console: Console | None = None) -> None:
    """Print ``table``: Rich's borders when they fit the terminal, else plain aligned text, uncut."""
    console = console or Console()
    if table.fits(console):
        console.print(table.rich())
    else:
        console.print(Text(table.plain()), soft_wrap=True, highlight=False)


def all_diverged(row: dict) -> bool:
    """Every initial condition of this learning rate diverged: it has no lambda_nMLE."""
    return bool(row.get("n_ic")) and row.get("n_diverged") == row["n_ic"]


def summary_table(rows: list[dict], title: str) -> TextTable:
    """Rows with eta, lambda_mean/std, rho, tau_mean/std/median, n_reached, n_ic, n_diverged; lambda
    reads "diverged" where every initial condition diverged. With tangent curves, lambda_tangent
    +- std and rho_tangent beside lambda_nMLE (docs/tangent.md)."""
    sharpness = any(row.get("sharpness_late_median") is not None for row in rows)
    tangent = any(row.get("lambda_tangent_mean") is not None for row in rows)
    columns = ["eta", "lambda_nMLE", "± std", "rho %"]
    columns += ["lambda_tangent", "± std", "rho_t %"] if tangent else []
    columns += ["<tau>", "± std", "median", "reached", "diverged"]
    table = TextTable(columns + (["sharpness", "2/eta"] if sharpness else []), title=title)
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
    print_table(summary_table(rows, title=str(path)), console)
    note = divergence_note(rows)
    if note:
        console.print(note)
