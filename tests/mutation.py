"""Mutation testing of the transport, tracing, session, cookie and payload modules (not in CI).

    pip install mutmut==3.8.1
    python tests/mutation.py [--workdir /tmp/mutation] [--budget 3000] [--workers 2]
    python tests/mutation.py --report            # the scores and survivors of the last run

mutmut generates the mutants; this script does the rest itself, because `mutmut run` 3.8.1
crashes here (segfault or a corrupted value) in its stats run: its trampolines set a
ContextVar on every call of a mutated function, and under these tests that breaks. So:

1. the committed tree (`git archive HEAD`) goes to `--workdir`, never the work tree itself;
2. mutmut writes `mutants/` there, one trampoline per function, from `[tool.mutmut]` below;
3. one plain pytest run of TESTS with MUTANT_UNDER_TEST=stats records which tests reach each
   mutated function (`mutstats.json`);
4. each mutant then runs in a fresh pytest process (`MUTANT_UNDER_TEST=<its name>`), on the
   tests that reached its function only, fastest first, `-x`: exit 0 is "survived", 1 or a
   crash "killed" (4: the conftest import failed, which is killed too), past the time limit
   "timeout" (killed); a mutant no test reaches is "no tests" (counted as not killed);
5. every kill is re-checked once on the unmutated tree: the test that failed (or, for a
   timeout or a crash that names none, the mutant's whole test selection) runs again on the
   clean copy. If it fails there too, the kill is "flaky" and does not count: the mutant is
   scored as not killed, and the test is worth a look.
   Mutants are sampled per module (SAMPLE, a fixed seed), interleaved so that a run stopped
   by `--budget` (seconds) has a proportional share of each; results go to
   `mutresults.jsonl`, and a second run resumes where the first stopped.

`--report` prints, per module, mutants generated / run / killed / survived / flaky and the
score (killed / run, "no tests" and "flaky" included in run), then each survivor's diff
(`mutmut show`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

SAMPLE = {  # module: how many of its mutants to run (all, if it has fewer)
    "compat/_signals.py": 40,
    "compat/_tracing.py": 100,
    "compat/_session.py": 140,
    "compat/_cookies.py": 100,
    "compat/_payload.py": 100,
    "compat/_transport/_backends/__init__.py": 40,
    "compat/_transport/_backends/_asyncio.py": 50,
    "compat/_transport/_backends/_trio.py": 50,
    "compat/_transport/_connection.py": 140,
    "compat/_transport/_decoders.py": 100,
    "compat/_transport/_dns.py": 50,
    "compat/_transport/_engine.py": 70,
    "compat/_transport/_http2.py": 100,
    "compat/_transport/_httpx.py": 50,
    "compat/_transport/_mocked.py": 30,
    "compat/_transport/_opener.py": 80,
    "compat/_transport/_pool.py": 110,
}
TESTS = [
    "tests/test_cookies.py",
    "tests/test_payload.py",
    "tests/test_decoders.py",
    "tests/test_pool_dns.py",
    "tests/test_wire.py",
    "tests/test_signals.py",
    "tests/test_session.py",
    "tests/test_reliability.py",
    "tests/test_httpx_native.py",
    "tests/test_http2.py",
    "tests/test_mutants.py",
]
PYTEST_ARGS = [
    "-p",
    "no:randomly",
    "--timeout",
    "60",
    "-p",
    "no:cacheprovider",
    # counts the calls make_body makes: mutmut's trampolines add their own
    "--deselect",
    "tests/test_payload.py::test_hot_path_is_cheap",
]

CONFIG = f"""
[tool.mutmut]
use_setproctitle = false
source_paths = ["compat/"]
only_mutate = {json.dumps(list(SAMPLE))}
pytest_add_cli_args = {json.dumps(["-q", *PYTEST_ARGS])}
pytest_add_cli_args_test_selection = {json.dumps(TESTS)}
"""

GENERATE = """
from mutmut.__main__ import create_mutants
from mutmut.mutation.trampoline import set_mutant_under_test
from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir
import os
set_mutant_under_test("mutant_generation")
os.makedirs("mutants", exist_ok=True)
copy_src_dir()
copy_also_copy_files()
print(create_mutants(2))
"""

STATS = """
import json, os, sys
sys.path.insert(0, os.path.abspath("mutants"))
from mutmut.runners.harness import PytestRunner
from mutmut.state import state
rc = PytestRunner().run_stats(tests=[])
tests = {k: sorted(v) for k, v in state().tests_by_mangled_function_name.items()}
json.dump({"rc": rc, "tests": tests, "durations": state().duration_by_test},
          open("mutstats.json", "w"), indent=1)
sys.exit(rc)
"""


def prepare(workdir: Path) -> None:
    if (workdir / "mutstats.json").exists():
        return
    workdir.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD"], capture_output=True)
    archive.check_returncode()
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive.stdout, check=True)
    with open(workdir / "pyproject.toml", "a") as f:
        f.write(CONFIG)
    subprocess.run([PYTHON, "-c", GENERATE], cwd=workdir, check=True)
    env = dict(os.environ, MUTANT_UNDER_TEST="stats")
    stats = subprocess.run([PYTHON, "-X", "faulthandler", "-c", STATS], cwd=workdir, env=env)
    if stats.returncode != 0:
        sys.exit(f"the stats run failed ({stats.returncode}): the suite must pass first")


def plan(workdir: Path) -> list[tuple[float, str, str, list[str], float]]:
    stats = json.loads((workdir / "mutstats.json").read_text())
    durations = stats["durations"]
    rng = random.Random(15)
    queue = []
    for module, target in SAMPLE.items():
        meta = json.loads((workdir / "mutants" / (module + ".meta")).read_text())
        keys = sorted(meta["exit_code_by_key"])
        rng.shuffle(keys)
        for i, key in enumerate(keys[:target]):
            tests = stats["tests"].get(key.partition("__mutmut_")[0], [])
            tests = sorted(tests, key=lambda t: durations.get(t, 0))
            estimate = sum(durations.get(t, 0) for t in tests)
            queue.append(((i + 0.5) / min(target, len(keys)), module, key, tests, estimate))
    queue.sort()
    return queue


def _pytest(
    cwd: Path, env: dict[str, str], tests: list[str], limit: float
) -> tuple[int | None, list[str]]:
    """pytest on `tests` (-x): its exit code (None past `limit` seconds) and the failed ids."""
    cmd = [PYTHON, "-m", "pytest", "--rootdir=.", "-x", "-q", "-rfE", *PYTEST_ARGS, *tests]
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return None, []
    failed = [  # "FAILED tests/x.py::test[id] - message" in the short summary
        line.split()[1]
        for line in proc.stdout.splitlines()
        if line.startswith(("FAILED ", "ERROR ")) and "::" in line
    ]
    return proc.returncode, failed


def run_one(workdir: Path, key: str, tests: list[str], estimate: float) -> str:
    if not tests:
        return "no tests"
    limit = max(60, 3 * estimate + 30)
    env = dict(os.environ, MUTANT_UNDER_TEST=key, PYTHONPATH=str(workdir / "mutants"))
    code, failed = _pytest(workdir / "mutants", env, tests, limit)
    if code == 0:
        return "survived"
    status = "timeout" if code is None else "killed" if code == 1 else f"killed (exit {code})"
    # The kill counts only if what killed it passes on the unmutated tree.
    culprits = failed[:1] or tests
    clean_env = dict(os.environ, PYTHONPATH=str(workdir))
    clean_env.pop("MUTANT_UNDER_TEST", None)
    if _pytest(workdir, clean_env, culprits, limit)[0] != 0:
        return f"flaky ({status}; {culprits[0]} fails unmutated too)"
    return status


def run(workdir: Path, budget: float, workers: int) -> None:
    out = workdir / "mutresults.jsonl"
    done = set()
    if out.exists():
        done = {json.loads(line)["key"] for line in out.read_text().splitlines()}
    queue = [item for item in plan(workdir) if item[2] not in done]
    deadline = time.monotonic() + budget
    lock = threading.Lock()

    def work(item: tuple[float, str, str, list[str], float]) -> None:
        _, module, key, tests, estimate = item
        if time.monotonic() > deadline:
            return
        started = time.monotonic()
        status = run_one(workdir, key, tests, estimate)
        took = time.monotonic() - started
        line = {"module": module, "key": key, "status": status, "took": round(took, 1)}
        with lock, out.open("a") as f:
            f.write(json.dumps(line) + "\n")
            print(f"{status:9} {took:6.1f}s {key}", flush=True)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, queue))


def report(workdir: Path) -> None:
    results = [json.loads(line) for line in (workdir / "mutresults.jsonl").read_text().splitlines()]
    print(
        f"{'module':40} {'generated':>9} {'run':>5} {'killed':>6} {'survived':>8} {'no tests':>8}"
        f" {'flaky':>5} {'score':>6}"
    )
    for module in SAMPLE:
        meta = json.loads((workdir / "mutants" / (module + ".meta")).read_text())
        mine = [r for r in results if r["module"] == module]
        count = Counter(
            r["status"] if r["status"] in ("survived", "no tests") else r["status"][:5]
            for r in mine
        )
        killed = len(mine) - count["survived"] - count["no tests"] - count["flaky"]
        score = killed / len(mine) if mine else 0.0
        print(
            f"{module:40} {len(meta['exit_code_by_key']):9} {len(mine):5} {killed:6}"
            f" {count['survived']:8} {count['no tests']:8} {count['flaky']:5} {score:6.0%}"
        )
    for r in results:
        if r["status"].startswith("flaky"):
            print(f"\n{r['key']}: {r['status']}")
    for r in results:
        if r["status"] == "survived":
            show = subprocess.run(
                [PYTHON, "-m", "mutmut", "show", r["key"]],
                cwd=workdir,
                capture_output=True,
                text=True,
            )
            diff = [line for line in show.stdout.splitlines() if line[:1] in "+-"][2:]
            print(f"\n{r['key']}\n  " + "\n  ".join(diff))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mutation"))
    parser.add_argument("--budget", type=float, default=3000.0, help="seconds of mutant runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if not args.report:
        prepare(args.workdir)
        run(args.workdir, args.budget, args.workers)
    report(args.workdir)


if __name__ == "__main__":
    main()
