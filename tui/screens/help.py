"""The help screen (? or F1 anywhere): keys of every screen and what each field and column means."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Markdown

HELP = """\
# gdchaos-tui help

For every learning rate η the sweep trains **q** initial conditions, each with an ε-ball of
**M** perturbed replicas, and measures how fast the replicas separate from their reference.

## Fields (setup screen)

| field | symbol | meaning |
|---|---|---|
| preset | | a figure of the paper; fills every field |
| dataset | | `gdchaos data fetch NAME` downloads one that is missing |
| hidden | | widths of the hidden layers, e.g. `64` or `32,32` |
| activation | | tanh, sigmoid or relu |
| eta grid | η | learning rates of full-batch GD, θ ← θ − η∇L(θ): `1,2.5,5`, `0.1:20:16`, `log:1e-3:20:16` |
| q (ICs) | q | initial conditions per η, weights θ₀ ~ N(0, σ²), biases 0 |
| M replicas | M | replicas per ε-ball, weights θ₀ + U(−ε, ε) |
| eps | ε | radius of the ball |
| epochs T | T | the distances d_j(t) are recorded for t = 0..T |
| target acc | | test accuracy that defines τ |
| tau epochs | | budget: references train on until the target or this many epochs |
| output | | the results file (HDF5); the config is saved beside it as `FILE.toml` |

## Columns and charts

| name | meaning |
|---|---|
| d(t), D(t) | L1 distance of replica j to its reference; D: the mean over the M replicas |
| Λ | local exponent of one ball: slope of ln D(t) over its exponential window (Eq. 3), 1/epoch |
| λ_nMLE | mean of Λ over the q initial conditions, ± their std (1/epoch) |
| ρ | share of initial conditions with Λ > 0 (chaotic), % |
| ⟨τ⟩ | mean epochs to the target over the ICs that reached it; censored ICs (never within the budget) are counted, not averaged, and marked ▲ in the chart |
| diverged | networks whose loss became NaN or inf (data, not an error) |

## Keys

| where | key | action |
|---|---|---|
| everywhere | `?` `F1` | this help |
| | `ctrl+p` | command palette: open a file, new sweep, help, quit |
| | `q` `ctrl+c` | quit (asks first while our run is going; `q` twice stops it and quits) |
| | `escape` | close a dialog or this help; back from the results |
| setup | `ctrl+s` `enter` | start (refused while a field is invalid) |
| | `tab` | next field |
| | `ctrl+l` | find the learning rate: a short find-lr probe, then fill the η grid with a sweep centred on its onset |
| live | `s` | stop our run (the file stays resumable), or stop following another's |
| | `r` | resume a stopped run |
| | `f` | follow again |
| | `↑` `↓` `c` | pick a learning rate; `c` follows the work again |
| | `v` | results |
| | `o` `n` | open another file, set up a new sweep |
| results | `↑` `↓` | pick a learning rate: its ICs' ln D(t) and fits |
| | `g` `i` | the charts against η / back to the initial conditions |
"""


class HelpScreen(ModalScreen[None]):
    """Keys and field meanings, scrollable; escape, ? or F1 close it."""

    BINDINGS = [Binding("escape,question_mark,f1", "dismiss", "Close"), Binding("q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    #help { width: 100; max-width: 100%; height: 100%; max-height: 100%; border: round $primary;
            background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#help").border_title = "help · escape closes · ↑↓ scroll"
        self.query_one("#help").focus()
