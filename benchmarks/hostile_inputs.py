"""The hostile-input campaign of docs/reliability.md: every CLI flag and TOML key given wrong types,
out-of-range and unaffordable values; each case must end in exit 0 (a valid run) or exit 2 with one
line on stderr and no traceback, a refusal within 5 s.

    GDCHAOS_DATA=DATA python benchmarks/hostile_inputs.py [--jobs 2] [--markdown]

Cases run on a small Iris base config in a fresh folder each; the last column of a row is the
first line the run printed on stderr.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BASE = ["--etas", "1,10", "--ics", "2", "--replicas", "2", "--epochs", "20", "--tau-epochs", "30", "--quiet"]
BASE_TOML = 'etas = [1.0, 10.0]\nics = 2\nreplicas = 2\nepochs = 20\ntau_epochs = 30\n'
REFUSAL_SECONDS = 5.0
TIMEOUT = 120

NUMBERS = ["0", "-1", "1.5", "1e18", "99999999999999999999999", "nan", "inf", "-inf", "", "x", "0x10", "1_000"]
FLAGS = {  # flag: hostile values (on top of NUMBERS for the numeric ones)
    "--ics": NUMBERS + ["2147483647", "100000000"], "--replicas": NUMBERS + ["10000000", "2147483647"],
    "--epochs": NUMBERS + ["100000000", "2147483646"], "--tau-epochs": NUMBERS + ["1000000000000", "2147483646"],
    "--eps": NUMBERS + ["1e-300", "1e300"], "--target": NUMBERS + ["1.0000001"], "--seed": NUMBERS + [str(2**63)],
    "--memory-budget-mb": NUMBERS + ["1", "99999999999"], "--sharpness-every": NUMBERS,
    "--sharpness-subset": NUMBERS, "--trajectory-every": NUMBERS, "--l2": NUMBERS, "--init-std": NUMBERS,
    "--hidden": ["0", "-1", "1.5", "10,,10", ",", "1000000000", "100000,100000", "20000,20000", "x", ""],
    "--etas": ["0", "-1", "nan", "inf", "1:2:0", "1:2:-3", "1:2:10000000000", "log:0:1:3", "log:1:2", "a,b", "",
               ",", "1e309", "1:2:3:4:5"],
    "--activation": ["gelu", "", "TANH"], "--dataset": ["imagenet", "", "../iris"], "--dtype": ["float16", "int"],
    "--preset": ["", "mnist-nope", "../iris-tanh"], "--trajectory-ics": ["-1", "99", "x", "0,0"],
    "--trajectory-dtype": ["float16", ""], "--config": ["/dev/null", "/bin/ls", "missing.toml", "/"],
    "-o": ["/proc/forbidden/r.h5", "/", "", "nofolder/sub/r.h5"],
}
TOML_VALUES = ['"no"', "1", "1.5", "true", "[1]", "[]", '"x"', "{a = 1}", "1e9", "-1", "nan", "inf"]
TOML_KEYS = ["ics", "replicas", "epochs", "tau_epochs", "eps", "perturb_biases", "target", "seed", "dtype",
             "output", "memory_budget_mb", "ics_per_unit", "etas_per_unit", "sharpness_every", "save_trajectories",
             "trajectory_ics", "trajectory_every", "etas", "model.hidden", "model.activation", "model.l2",
             "model.init_std", "model.layers", "analysis.n_boot", "analysis.r2_min", "analysis.estimator",
             "unknown_key", "model"]


def cases() -> list[tuple[str, list[str], str | None]]:
    """(name, command-line arguments, TOML text or None) of every case."""
    out = [(f"{flag} {value!r}", [flag, value], None) for flag, values in FLAGS.items() for value in values]
    for key in TOML_KEYS:
        for value in TOML_VALUES:
            table, _, name = key.rpartition(".")
            if table:  # a key of a table goes after the top-level keys
                text = f"{BASE_TOML}[{table}]\n{name} = {value}\n"
            else:  # a top-level key replaces the base's own
                kept = [line for line in BASE_TOML.splitlines() if not line.startswith(f"{name} = ")]
                text = "\n".join([f"{name} = {value}", *kept]) + "\n"
            out.append((f"toml {key} = {value}", [], text))
    return out


def run_case(case) -> dict:
    name, args, toml = case
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "gdchaos", "run", "--headless"]
        if toml is None:
            command += [*BASE, *args]
        else:
            Path(folder, "c.toml").write_text(toml)
            command += ["--config", "c.toml", "--quiet"]
        start = time.perf_counter()
        try:
            result = subprocess.run(command, capture_output=True, text=True, cwd=folder, timeout=TIMEOUT)
            code, err = result.returncode, result.stderr
        except subprocess.TimeoutExpired:  # a valid config that runs long, if its plan is accepted
            planned = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, cwd=folder,
                                     timeout=TIMEOUT)
            code, err = ("valid, runs long" if planned.returncode == 0 else "timeout"), planned.stdout
        seconds = time.perf_counter() - start
    lines = err.strip().splitlines()
    ok = code in (0, "valid, runs long") or (code == 2 and len(lines) == 1 and "Traceback" not in err
                                              and seconds < REFUSAL_SECONDS)
    return {"case": name, "exit": code, "seconds": round(seconds, 2), "ok": ok, "first_line": lines[0] if lines else ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--markdown", action="store_true", help="a table of the cases that did not pass")
    parser.add_argument("--only", help="run only the cases whose name contains this text")
    args = parser.parse_args()
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(run_case, [case for case in cases() if not args.only or args.only in case[0]]))
    bad = [row for row in rows if not row["ok"]]
    for row in rows:
        print(json.dumps(row))
    refusals = [row["seconds"] for row in rows if row["exit"] == 2]
    long = sum(row["exit"] == "valid, runs long" for row in rows)
    print(f"# {len(rows)} cases: {sum(row['exit'] == 0 for row in rows)} ran, {long} valid but long (stopped after "
          f"{TIMEOUT} s), {len(refusals)} refused in one line (slowest {max(refusals, default=0):.1f} s), "
          f"{len(bad)} failed", file=sys.stderr)
    if args.markdown:
        for row in bad:
            print(f"| `{row['case']}` | {row['exit']} | {row['seconds']} s | {row['first_line'][:100]} |")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
