"""Setup screen: a preset prefills the form, every edit is validated, Start launches the sweep."""
from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static
from textual.worker import get_current_worker

from gdchaos import data, presets
from gdchaos.config import ACTIVATIONS, SweepConfig, from_dict
from gdchaos.errors import DataError, GdchaosError
from gdchaos.engine.build import build_for_dataset
from gdchaos.engine.estimate import estimate_seconds, network_size
from gdchaos.engine.units import plan_units
from gdchaos.text import duration
from gdchaos_tui.reader import ReadError, RunReader
from gdchaos_tui.screens.dialogs import OutputTakenScreen
from gdchaos_tui.screens.findlr import FindLRScreen
from gdchaos_tui.widgets.title import TitleBar

# form inputs: widget id -> label; the id is the config field an error message names (less "model.")
INPUTS = {"hidden": "hidden", "ics": "q (ICs)", "etas": "eta grid", "replicas": "M replicas", "eps": "eps",
          "epochs": "epochs T", "target": "target acc", "tau_epochs": "tau epochs", "output": "output"}
PROBE_ETA = 1.0  # the η field's value while find-lr builds its config (find-lr sets its own)
PLACEHOLDERS = {"etas": "1,2.5,5  or  0.1:20:16  or  log:1e-3:20:16", "hidden": "64 or 32,32"}


def _number(text: str) -> int | float | str:
    """An int or float from the text; the text itself when neither (validation then names the field)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def form_values(config: SweepConfig) -> dict[str, str]:
    """The text of every input for ``config``."""
    return {
        "hidden": ",".join(str(h) for h in config.model.hidden), "ics": str(config.ics),
        "etas": ",".join(f"{eta:g}" for eta in config.etas), "replicas": str(config.replicas),
        "eps": f"{config.eps:g}", "epochs": str(config.epochs), "target": f"{config.target:g}",
        "tau_epochs": str(config.tau_epochs), "output": config.output,
    }


class SetupScreen(Screen):
    """Configure a sweep; Start is enabled only while the whole config validates."""

    class StartRequested(Message):
        """The user asked to run ``config``."""

        def __init__(self, config: SweepConfig, overwrite: bool = False) -> None:
            super().__init__()
            self.config = config
            self.overwrite = overwrite  # replace a results file of another sweep

    BINDINGS = [Binding("ctrl+s", "start", "Start"), Binding("ctrl+l", "find_lr", "Find η"),
                Binding("ctrl+o", "app.open_file", "Open file"), Binding("ctrl+q", "app.quit", "Quit", priority=True)]
    DEFAULT_CSS = """
    SetupScreen { align-horizontal: center; }
    #form {
        grid-size: 4; grid-columns: 12 1fr 12 1fr; grid-rows: 1; grid-gutter: 1 1;
        height: auto; max-width: 110; padding: 1 1 0 1;
    }
    #form Label { color: $text-muted; width: 12; }
    #form .row { column-span: 4; width: 1fr; }
    #form Input.bad { background-tint: $error 25%; }
    #form #preset-about { column-span: 2; width: 1fr; }
    #cost, #problem { height: auto; max-width: 110; padding: 0 2; }
    #problem { color: $error; }
    #cost { color: $text-muted; }
    #actions { height: 3; max-width: 110; padding: 0 2; }
    """

    def __init__(self, base: SweepConfig | None = None, preset: str | None = None, *, start: bool = False,
                 overwrite: bool = False) -> None:
        super().__init__()
        self._start_now, self._overwrite = start, overwrite  # gdchaos run: start at once, as ctrl+s
        self._keep_plan = start  # gdchaos run keeps its units as planned: the same file as --headless
        self._as_given: SweepConfig | None = None
        self._preset = preset if preset or base else "iris-tanh"
        self._base = base or presets.get(self._preset)
        self.config: SweepConfig | None = None

    def compose(self) -> ComposeResult:
        yield TitleBar()
        values = form_values(self._base)
        with Grid(id="form"):
            yield Label("preset")
            yield Select([(name, name) for name in presets.names()], value=self._preset or Select.NULL,
                         prompt="(custom)", compact=True, id="preset")
            yield Label(presets.describe(self._preset) if self._preset else "", id="preset-about", markup=False)
            yield Label("dataset")
            yield Select([(name, name) for name in data.names()], value=self._base.dataset, allow_blank=False,
                         compact=True, id="dataset")
            yield Label("activation")
            yield Select([(name, name) for name in ACTIVATIONS], value=self._base.model.activation,
                         allow_blank=False, compact=True, id="activation")
            for key, label in INPUTS.items():
                field = Input(values[key], placeholder=PLACEHOLDERS.get(key, ""), compact=True, id=key)
                if key == "etas":  # the whole width under its label: the paper's 16 values fit at 80 columns
                    yield Label(f"{label}  ({PLACEHOLDERS[key]})", id="eta-label", classes="row", markup=False)
                    field.add_class("row")
                else:
                    yield Label(label)
                yield field
        yield Static(id="cost", markup=False)
        yield Static(id="problem", markup=False)
        with Horizontal(id="actions"):
            yield Button("Start", variant="success", id="start", disabled=True)
            yield Button("Find η", id="find-lr", tooltip="find the learning rate (ctrl+l): a short probe, "
                         "then an η grid centred on the onset of chaos")
        yield Footer()

    def on_mount(self) -> None:
        self.title, self.sub_title = "gdchaos", "new sweep"
        self._show_model_kind()
        self.validate_form()
        if self._start_now:  # a problem (missing data, ...) stays on the form instead
            self._start_now = False
            self.call_after_refresh(self.action_start)

    # ------------------------------------------------------------------ editing
    @on(Select.Changed, "#preset")
    def _preset_chosen(self, event: Select.Changed) -> None:
        if event.value is Select.NULL or event.value == self._preset:
            return
        self._preset, self._base = str(event.value), presets.get(str(event.value))
        self.query_one("#preset-about", Label).update(presets.describe(self._preset))
        self.query_one("#dataset", Select).value = self._base.dataset
        self.query_one("#activation", Select).value = self._base.model.activation
        for key, text in form_values(self._base).items():
            self.query_one(f"#{key}", Input).value = text
        self._show_model_kind()

    def _show_model_kind(self) -> None:
        """A CNN preset brings its layers: the hidden widths do not apply."""
        hidden = self.query_one("#hidden", Input)
        hidden.disabled = self._base.model.kind == "cnn"
        hidden.placeholder = "layers from the preset (CNN)" if hidden.disabled else PLACEHOLDERS["hidden"]

    @on(Input.Changed)
    @on(Select.Changed, "#dataset, #activation")
    def validate_form(self) -> None:
        """Build the config from the form; show the first problem or the cost of the run."""
        for widget in self.query(Input):
            widget.remove_class("bad")
        try:
            self.config = self._build()
        except GdchaosError as exc:
            self.config = None
            message = str(exc)
            field = message.split(":", 1)[0].strip().removeprefix("model.")
            if field in INPUTS:
                self.query_one(f"#{field}", Input).add_class("bad")
            self._say("#problem", f"✗ {message}")
            self._say("#cost", "")
        else:
            try:
                data.check_present(self.config.dataset, self.config.data_dir)
            except DataError as exc:  # caught here, not after Start
                self.config = None
                self._say("#problem", f"✗ dataset: {exc}")
                self._say("#cost", "")
        if self.config is not None:
            self._say("#problem", "")
            self._say("#cost", "estimating the cost…")
            self._estimate(self.config, self._as_given)
        self.query_one("#start", Button).disabled = self.config is None
        self.refresh_bindings()

    def _say(self, selector: str, text: str) -> None:
        """Show ``text`` in the cost or problem line; an empty line takes no room (Start stays in view at 80x24)."""
        line = self.query_one(selector, Static)
        line.update(text)
        line.display = bool(text)

    def _build(self, etas: str | None = None) -> SweepConfig:
        """The config of the form (``etas``: instead of the η field's)."""
        text = {key: self.query_one(f"#{key}", Input).value.strip() for key in INPUTS}
        if etas is not None:
            text["etas"] = etas
        if not text["output"]:
            raise GdchaosError("output: name the results file, e.g. sweep.h5")
        model = {"activation": self.query_one("#activation", Select).value}
        if self._base.model.kind == "mlp":
            model["hidden"] = text["hidden"]
        values = {
            "dataset": self.query_one("#dataset", Select).value, "model": model,
            "etas": text["etas"], "output": text["output"],
            **{key: _number(text[key]) for key in ("ics", "replicas", "eps", "epochs", "target", "tau_epochs")},
        }
        config = from_dict(values, self._base).validate()
        self._as_given = config  # before per_eta_units: what a file started elsewhere may hold
        return config if self._keep_plan else per_eta_units(config)

    # --------------------------------------------------------------------- cost
    class CostKnown(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    @work(thread=True, exclusive=True, group="estimate")
    def _estimate(self, config: SweepConfig, as_given: SweepConfig | None = None) -> None:
        """Network, size and estimated time (measures this machine once), and what Start does to the file."""
        networks = len(config.etas) * config.ics * (config.replicas + 1)
        text = f"{len(config.etas)} η × {config.ics} ICs × {config.replicas + 1} = {networks:,} networks"
        try:
            spec = data.dataset_spec(config.dataset)
            features, classes = spec.features, spec.classes
            shape = ("CNN" if config.model.kind == "cnn"
                     else "-".join(str(n) for n in (features, *config.model.hidden, classes)))
            text = f"{shape}, {network_size(config):,} params · {text}"
            seconds = estimate_seconds(config, measure=False)  # this machine's stored timing: at once
            if seconds is None and not get_current_worker().is_cancelled:
                self.post_message(self.CostKnown(f"{text}\ntiming this network on this machine (once)…"))
            if seconds is None:
                seconds = estimate_seconds(config)
            text = f"{text}\n≈ {duration(seconds)} on this machine"  # a line each: no wrap at 80 columns
        except Exception:  # an estimate is a hint: never let it break the form
            pass
        note = _file_note(Path(config.output), config, as_given)
        if not get_current_worker().is_cancelled:
            self.post_message(self.CostKnown(text + (f"\n{note}" if note else "")))

    def on_setup_screen_cost_known(self, message: CostKnown) -> None:
        if self.config is not None:
            self._say("#cost", message.text)

    # -------------------------------------------------------------------- start
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.config is not None if action == "start" else True

    @on(Button.Pressed, "#start")
    @on(Input.Submitted)
    def action_start(self) -> None:
        """Ask the app to run the config, if it is valid; an output that holds something else is not
        touched before the user chose a new name or to overwrite it."""
        config = self.config
        if config is None:
            return
        problem, can_overwrite = output_taken(Path(config.output), config)
        if problem is not None and self._as_given is not None and self._as_given != config:
            if output_taken(Path(config.output), self._as_given)[0] is None:  # started with the plain plan
                config, problem = self._as_given, None
        if problem is not None and can_overwrite and self._overwrite:  # asked for on the command line
            self.post_message(self.StartRequested(config, overwrite=True))
            return
        if problem is None:
            self.post_message(self.StartRequested(config))
            return
        free = free_name(Path(config.output))

        def chosen(choice: str | None) -> None:
            if choice == "rename":
                self.query_one("#output", Input).value = str(free)
                self.validate_form()
                if self.config is not None:
                    self.post_message(self.StartRequested(self.config))
            elif choice == "overwrite":
                self.post_message(self.StartRequested(config, overwrite=True))

        self.app.push_screen(OutputTakenScreen(problem, str(free), can_overwrite), chosen)


    # ------------------------------------------------------------ find the learning rate
    @on(Button.Pressed, "#find-lr")
    def action_find_lr(self) -> None:
        """Probe the form's config for the onset of chaos (the η field may be anything), then offer to fill
        the η field with a sweep centred on it."""
        as_given = self._as_given
        try:
            config = self._build(etas=str(PROBE_ETA))
        except GdchaosError as exc:
            self.notify(f"✗ {exc}", severity="error")
            return
        finally:
            self._as_given = as_given  # that of the form's own config

        def fill(grid: str | None) -> None:
            if grid is not None:
                self.query_one("#etas", Input).value = grid

        self.app.push_screen(FindLRScreen(config), fill)


def per_eta_units(config: SweepConfig) -> SweepConfig:
    """The config with one learning rate per unit where the automatic plan would put several in one
    (Iris: the whole grid), so that the live charts fill as each learning rate completes and a stop
    loses only the learning rate in flight; a config that sets ``etas_per_unit`` keeps it."""
    if config.etas_per_unit or len(config.etas) < 2:
        return config
    units = plan_units(config, build_for_dataset(config), data.dataset_spec(config.dataset).train)
    if all(unit.eta_stop - unit.eta_start == 1 for unit in units):
        return config
    return from_dict({"etas_per_unit": 1}, config).validate()


def output_taken(path: Path, config: SweepConfig) -> tuple[str | None, bool]:
    """Why ``path`` cannot simply receive this sweep (None: it is free or holds this very sweep), and
    whether Start may replace it (only a gdchaos results file of another sweep)."""
    if not path.exists() and not path.is_symlink():
        return None, False
    if not path.is_file() or path.is_symlink():
        return f"{path} is not a regular file.", False
    try:
        same = RunReader(path).config().identity() == config.identity()
    except ReadError as exc:
        return f"{path} is not a gdchaos results file of this sweep ({exc}).", False
    return (None, False) if same else (f"{path} holds a different sweep.", True)


def free_name(path: Path) -> Path:
    """``NAME-2.h5``, ``NAME-3.h5``, ...: the first that does not exist."""
    for n in range(2, 10_000):
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
    return path.with_name(f"{path.stem}-new{path.suffix}")


def _file_note(path: Path, config: SweepConfig, as_given: SweepConfig | None = None) -> str:
    """What starting does to the output: a new folder, or an existing file resumed or refused."""
    if not path.exists():
        missing = next((p for p in reversed(path.absolute().parents) if not p.exists()), None)
        return f"Start creates the folder {missing}" if missing is not None else ""
    try:
        stored = RunReader(path).config().identity()
        same = stored in (config.identity(), as_given.identity() if as_given else None)
    except ReadError:
        return f"⚠ {path} exists and is not a gdchaos results file: Start offers another name"
    if same:
        return f"{path} exists with this config: Start resumes it"
    return f"⚠ {path} holds a different sweep: Start asks to overwrite it or use another name"
