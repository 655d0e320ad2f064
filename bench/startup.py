"""Start-up times, each over ``--runs`` fresh subprocesses (median, min, max): the interpreter's
own floor (``python -c pass``), ``clinsim --help`` (the installed entry point, and
``python -m simulator.cli``), and the TUI from interpreter start to its first screen ready.

The TUI is built exactly as ``clinsim tui`` builds it: the subprocess runs the real command,
with ``App.run`` patched to run headless and with an auto pilot that exits as soon as the
scenario browser is mounted and idle. Inside that process the time from the script's first line
to ``ClinsimApp.run`` (imports, options, services) and on to the first screen ready (Textual's
start, mount, first layout) is also taken, to separate them from the interpreter's start.
Everything runs with a temporary $CLINSIM_HOME, so nothing of the user's is read or touched.

    python bench/startup.py                 # 7 runs of each
    python bench/startup.py --smoke         # one run of each: what CI runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, machine, median, write_json

HELP_TARGET_S = 0.5

# Runs `clinsim tui` in this process, headless, until the first screen is ready; prints one JSON
# line: seconds from the script's start to the app's run, to ready, and the wall clock at ready.
TUI_SCRIPT = """\
import time
T0 = time.perf_counter()
import json, sys
from textual.app import App

_run, marks = App.run, {}

def run(self, **kw):
    marks["run"] = time.perf_counter()

    async def ready(pilot):
        app = pilot.app
        while type(app.screen).__name__ != "BrowserScreen" or not app.screen.is_mounted:
            await pilot.pause()
        await pilot.pause()
        marks["ready"], marks["wall"] = time.perf_counter(), time.time()
        app.exit()

    result = _run(self, headless=True, auto_pilot=ready)
    print(json.dumps({"to_run_s": marks["run"] - T0, "to_ready_s": marks["ready"] - T0,
                      "ready_at": marks["wall"]}), flush=True)
    return result

App.run = run
sys.argv = ["clinsim", "tui"]
from simulator.cli import main
main()
"""


def spread(xs: list[float]) -> dict[str, Any]:
    return {"median_s": median(xs), "min_s": min(xs), "max_s": max(xs), "runs_s": xs}


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall clock at spawn, wall seconds to exit, stdout) of one fresh subprocess."""
    at, t0 = time.time(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[1:]} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return at, wall, proc.stdout


def entry_point() -> list[str]:
    """The installed ``clinsim`` script beside this interpreter (not a pyenv shim), else -m."""
    script = Path(sys.executable).parent / "clinsim"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "simulator.cli"]


def measure(runs: int, env: dict[str, str]) -> dict[str, Any]:
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "clinsim --help": [*entry_point(), "--help"],
        "python -m simulator.cli --help": [sys.executable, "-m", "simulator.cli", "--help"],
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    tui: dict[str, list[float]] = {"wall": [], "spawn_to_ready": [], "to_run": [], "to_ready": []}
    for _ in range(runs):  # interleaved, so that drift on a shared machine falls on all of them
        for name, cmd in commands.items():
            walls[name].append(timed(cmd, env)[1])
        at, wall, out = timed([sys.executable, "-c", TUI_SCRIPT], env)
        marks = json.loads(out.strip().splitlines()[-1])
        tui["wall"].append(wall)
        tui["spawn_to_ready"].append(marks["ready_at"] - at)
        tui["to_run"].append(marks["to_run_s"])
        tui["to_ready"].append(marks["to_ready_s"])
    return {
        "commands": {name: spread(xs) for name, xs in walls.items()},
        "tui": {name: spread(xs) for name, xs in tui.items()},
    }


def report(out: dict[str, Any]) -> None:
    def line(label: str, s: dict[str, Any], note: str = "") -> None:
        print(
            f"{label:32s} median {s['median_s'] * 1000:6.0f} ms "
            f"(min {s['min_s'] * 1000:.0f}, max {s['max_s'] * 1000:.0f}){note}",
            flush=True,
        )

    cmds, tui = out["commands"], out["tui"]
    line("python -c pass", cmds["python -c pass"], ": the interpreter's floor")
    for name in ("clinsim --help", "python -m simulator.cli --help"):
        ok = cmds[name]["median_s"] <= HELP_TARGET_S
        line(name, cmds[name], f": {'within' if ok else 'OVER'} the {HELP_TARGET_S} s target")
    line("clinsim tui, spawn to ready", tui["spawn_to_ready"], ": first screen mounted and idle")
    line("clinsim tui, script to run()", tui["to_run"], ": imports, options, services")
    line("clinsim tui, script to ready", tui["to_ready"], ": and Textual's start to first screen")
    line("clinsim tui, process wall", tui["wall"], ": spawn to exit, teardown included")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--smoke", action="store_true", help="one run of each: the CI check")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.smoke:
        args.runs = 1
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "CLINSIM_HOME": home, "PYTHONPATH": str(ROOT)}
        env.pop("PYTHONASYNCIODEBUG", None)
        out = {"runs": args.runs, "help_target_s": HELP_TARGET_S, **measure(args.runs, env)}
    report(out)
    write_json(args.out, out)


if __name__ == "__main__":
    main()
