"""Mutation testing of the transport, tracing, session, cookie and payload modules (not in CI).

    pip install coverage
    python tests/mutation.py [--workdir /tmp/mutation] [--budget 4200] [--workers 1]
    python tests/mutation.py --workdir /tmp/mutation --report   # scores and survivors

Stdlib and coverage only, in four steps:

1. the committed tree (`git archive HEAD`) goes to `--workdir` (`tree/`, kept pristine, and one
   copy per worker, `w0/`...), never the work tree itself;
2. tests/mutation_ops.py makes the mutants: one `ast` node on one line changed (a comparison
   or boolean operator swapped, a `not` dropped, a constant changed, a call dropped, a return
   value made None...), the rest of the file byte for byte;
3. one run of TESTS on the clean copy under coverage, each test in its own coverage context
   (a small pytest plugin switches it around setup, call and teardown, so code run by other
   tasks and threads during the test counts too), gives the test functions that reach each
   line, and their clean durations;
4. each sampled mutant is written into a worker's copy and runs in a fresh pytest process on
   the test functions that reached its line, fastest first and cut at SELECTION_SECONDS of
   their clean time (a line run only at import: IMPORT_TIME_SECONDS of the fastest tests that
   reach the module), `-x`: exit 0 is "survived", 1 or a crash "killed", past the time limit
   "timeout" (killed); a line no test reaches is "no tests" (not killed). The file is restored, and every kill is re-checked once on it: the
   test that failed (for a timeout or a crash that names none, the whole selection) runs again.
   If it fails on the clean tree too, the kill is "flaky" and does not count (not killed).

Mutants are sampled per module (SAMPLE, a fixed seed), interleaved so that a run stopped by
`--budget` (seconds) has a proportional share of each module; results go to
`mutresults.jsonl` in the workdir, and a second run resumes where the first stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mutation_ops import Mutant, mutants

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

SAMPLE = {  # module: how many of its mutants to run (all, if it has fewer)
    "compat/_signals.py": 15,
    "compat/_tracing.py": 15,
    "compat/_session.py": 15,
    "compat/_cookies.py": 15,
    "compat/_payload.py": 15,
    "compat/_transport/__init__.py": 15,
    "compat/_transport/_backends/__init__.py": 15,
    "compat/_transport/_backends/_asyncio.py": 15,
    "compat/_transport/_backends/_trio.py": 15,
    "compat/_transport/_connection.py": 15,
    "compat/_transport/_decoders.py": 15,
    "compat/_transport/_dns.py": 15,
    "compat/_transport/_engine.py": 15,
    "compat/_transport/_http2.py": 15,
    "compat/_transport/_httpx.py": 15,
    "compat/_transport/_mocked.py": 15,
    "compat/_transport/_opener.py": 15,
    "compat/_transport/_pool.py": 15,
    "compat/_transport/_trace_events.py": 15,
    "compat/_transport/_upgrade.py": 15,
}
TESTS = [
    "tests/test_cookies.py",
    "tests/test_payload.py",
    "tests/test_decoders.py",
    "tests/test_pool_dns.py",
    "tests/test_connect.py",
    "tests/test_wire.py",
    "tests/test_signals.py",
    "tests/test_session.py",
    "tests/test_reliability.py",
    "tests/test_httpx_native.py",
    "tests/test_http2.py",
    "tests/test_websocket.py",
    "tests/test_mutants.py",
    "tests/test_httpx_features.py",  # the one reaching _trace_events (after the 2026-12-02 run)
]
SELECTION_SECONDS = 60.0  # a mutant runs the fastest tests reaching its line, up to this much
IMPORT_TIME_SECONDS = 20.0  # of their clean (coverage run) time; less for import-time lines
PYTEST_ARGS = ["-p", "no:randomly", "--timeout", "60"]

COVERAGERC = """
[run]
source = compat
concurrency = thread
data_file = {data}
"""

# Loaded with `-p _mutctx` in the coverage run: one coverage context per test function (its
# params, setup and teardown included), durations and failures written at the end.
PLUGIN = """
import json
from collections import defaultdict

import coverage
import pytest

_cov = coverage.Coverage.current()
_durations = defaultdict(float)
_failed = set()


def _function(nodeid):
    return nodeid.partition("[")[0]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _cov.switch_context(_function(item.nodeid))
    yield
    _cov.switch_context("")


def pytest_runtest_logreport(report):
    _durations[_function(report.nodeid)] += report.duration
    if report.failed:
        _failed.add(_function(report.nodeid))


def pytest_sessionfinish(session):
    with open("durations.json", "w") as f:
        json.dump({"durations": _durations, "failed": sorted(_failed)}, f, indent=1)
"""


def _worker_dirs(workdir: Path, workers: int) -> list[Path]:
    return [workdir / f"w{i}" for i in range(workers)]


def prepare(workdir: Path, workers: int) -> None:
    """The pristine tree, the workers' copies, and (once) the coverage run's selection."""
    tree = workdir / "tree"
    if not tree.exists():
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD"], capture_output=True)
        archive.check_returncode()
        tree.mkdir(parents=True)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    for copy in _worker_dirs(workdir, workers):
        if not copy.exists():
            shutil.copytree(tree, copy)
        for module in SAMPLE:  # an interrupted run may have left a mutant in place
            shutil.copyfile(tree / module, copy / module)
        for cache in (copy / "compat").rglob("__pycache__"):
            shutil.rmtree(cache)
    if (workdir / "selection.json").exists():
        return
    first = _worker_dirs(workdir, workers)[0]
    where = subprocess.run(
        [PYTHON, "-c", "import compat; print(compat.__file__)"],
        cwd=first,
        env=_env(first),
        capture_output=True,
        text=True,
    )
    if not where.stdout.startswith(str(first)):
        sys.exit(f"compat imports from {where.stdout.strip()}, not from the copy {first}")
    (first / "_mutctx.py").write_text(PLUGIN)
    rc = workdir / "coveragerc"
    rc.write_text(COVERAGERC.format(data=workdir / "coverage.sqlite"))
    started = time.monotonic()
    cmd = [PYTHON, "-m", "coverage", "run", f"--rcfile={rc}", "-m", "pytest", "-q", "-p", "_mutctx"]
    proc = subprocess.run([*cmd, *PYTEST_ARGS, *TESTS], cwd=first, env=_env(first))
    print(f"coverage run: exit {proc.returncode} in {time.monotonic() - started:.0f}s")
    (first / "_mutctx.py").unlink()
    for cache in (first / "compat").rglob("__pycache__"):
        shutil.rmtree(cache)
    stats = json.loads((first / "durations.json").read_text())
    if stats["failed"]:
        print("failed on the clean tree (left out of every selection):", *stats["failed"])
    import coverage  # only the coverage run and this step need it

    data = coverage.CoverageData(basename=str(workdir / "coverage.sqlite"))
    data.read()
    lines: dict[str, dict[int, list[str]]] = {}
    for module in SAMPLE:
        contexts = data.contexts_by_lineno(str(first / module))
        lines[module] = {
            line: sorted(c for c in found if c and c not in stats["failed"])
            for line, found in contexts.items()
        }
    selection = {"durations": stats["durations"], "failed": stats["failed"], "lines": lines}
    (workdir / "selection.json").write_text(json.dumps(selection))


def _env(copy: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    return env


def plan(workdir: Path) -> list[tuple[float, Mutant, list[str], float]]:
    """The sampled mutants, interleaved across modules, each with its tests and their time."""
    selection = json.loads((workdir / "selection.json").read_text())
    durations: dict[str, float] = selection["durations"]
    rng = random.Random(20)
    queue: list[tuple[float, Mutant, list[str], float]] = []
    generated = {}
    for module, target in SAMPLE.items():
        found = mutants(module, (workdir / "tree" / module).read_text())
        generated[module] = len(found)
        rng.shuffle(found)
        for i, mutant in enumerate(found[:target]):
            tests = selection["lines"][module].get(str(mutant.line), [])
            if str(mutant.line) in selection["lines"][module] and not tests:
                tests = _import_time(selection["lines"][module], durations)
            tests = _fastest(tests, durations, SELECTION_SECONDS)
            estimate = sum(durations.get(t, 0.0) for t in tests)
            queue.append(((i + 0.5) / min(target, len(found)), mutant, tests, estimate))
    queue.sort(key=lambda item: (item[0], item[1].key))
    (workdir / "generated.json").write_text(json.dumps(generated))
    return queue


def _import_time(lines: dict[str, list[str]], durations: dict[str, float]) -> list[str]:
    """For a line run only when the module is imported (no test's context): the fastest tests
    that reach the module's other lines, up to IMPORT_TIME_SECONDS of their clean time."""
    return _fastest({t for tests in lines.values() for t in tests}, durations, IMPORT_TIME_SECONDS)


def _fastest(tests: Iterable[str], durations: dict[str, float], seconds: float) -> list[str]:
    """`tests` fastest first, cut where their clean time passes `seconds` (one at least)."""
    chosen: list[str] = []
    spent = 0.0
    for test in sorted(tests, key=lambda t: (durations.get(t, 0.0), t)):
        spent += durations.get(test, 0.0)
        if chosen and spent > seconds:
            break
        chosen.append(test)
    return chosen


def _pytest(copy: Path, tests: list[str], limit: float) -> tuple[int | None, list[str]]:
    """pytest on `tests` (-x): its exit code (None past `limit` seconds) and the failed ids."""
    cmd = [PYTHON, "-m", "pytest", "--rootdir=.", "-x", "-q", "-rfE", *PYTEST_ARGS, *tests]
    try:
        proc = subprocess.run(
            cmd, cwd=copy, env=_env(copy), capture_output=True, text=True, timeout=limit
        )
    except subprocess.TimeoutExpired:
        return None, []
    failed = [  # "FAILED tests/x.py::test[id] - message" in the short summary
        line.split(" - ")[0].split(" ", 1)[1]
        for line in proc.stdout.splitlines()
        if line.startswith(("FAILED ", "ERROR ")) and "::" in line
    ]
    return proc.returncode, failed


def run_one(copy: Path, mutant: Mutant, tests: list[str], estimate: float) -> dict[str, object]:
    if not tests:
        return {"status": "no tests"}
    limit = max(60.0, 3 * estimate + 30)
    path = copy / mutant.module
    clean = path.read_text()
    path.write_text(mutant.apply(clean))
    try:
        code, failed = _pytest(copy, tests, limit)
    finally:
        path.write_text(clean)
    if code == 0:
        return {"status": "survived"}
    if code == 5:  # nothing collected: the selection is wrong, not the mutant caught
        return {"status": "error (exit 5)"}
    status = "timeout" if code is None else "killed" if code == 1 else f"killed (exit {code})"
    culprits = failed[:1] or tests
    again, failed_again = _pytest(copy, culprits, limit)
    if again != 0:
        return {
            "status": "flaky",
            "was": status,
            "culprit": " ".join(culprits),
            "clean": {"exit": again, "failed": failed_again},
        }
    return {"status": status, "culprit": culprits[0] if failed else ""}


def run(workdir: Path, budget: float, workers: int) -> None:
    out = workdir / "mutresults.jsonl"
    done = set()
    if out.exists():
        done = {json.loads(line)["key"] for line in out.read_text().splitlines()}
    todo = [item for item in plan(workdir) if item[1].key not in done]
    print(f"{len(done)} done, {len(todo)} to run", flush=True)
    deadline = time.monotonic() + budget
    lock = threading.Lock()
    copies: queue.Queue[Path] = queue.Queue()
    for copy in _worker_dirs(workdir, workers):
        copies.put(copy)

    def work(item: tuple[float, Mutant, list[str], float]) -> None:
        _, mutant, tests, estimate = item
        if time.monotonic() > deadline:
            return
        copy = copies.get()
        try:
            started = time.monotonic()
            result = run_one(copy, mutant, tests, estimate)
            took = time.monotonic() - started
        finally:
            copies.put(copy)
        line = {
            "module": mutant.module,
            "key": mutant.key,
            "line": mutant.line,
            "operator": mutant.operator,
            "original": mutant.original,
            "mutated": mutant.mutated,
            "tests": len(tests),
            "took": round(took, 1),
            **result,
        }
        with lock, out.open("a") as f:
            f.write(json.dumps(line) + "\n")
            print(
                f"{result['status']:9} {took:6.1f}s {len(tests):4} tests {mutant.key}", flush=True
            )

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, todo))


def report(workdir: Path) -> None:
    results = [json.loads(line) for line in (workdir / "mutresults.jsonl").read_text().splitlines()]
    columns = ("generated", "run", "killed", "survived", "no tests", "timeout", "flaky", "score")
    print(f"{'module':40}" + "".join(f" {c:>9}" for c in columns))
    total: Counter[str] = Counter()
    if not (workdir / "generated.json").exists():
        plan(workdir)
    generated = json.loads((workdir / "generated.json").read_text())
    for module in SAMPLE:
        mine = [r for r in results if r["module"] == module]
        count = Counter(r["status"].split(" (")[0] for r in mine)
        row = Counter(
            generated=generated[module],
            run=len(mine),
            killed=count["killed"] + count["timeout"],
            survived=count["survived"],
            timeout=count["timeout"],
            flaky=count["flaky"],
        )
        row["no tests"] = count["no tests"]
        total.update(row)
        print(f"{module:40}" + _cells(row))
    print(f"{'total':40}" + _cells(total))
    for r in results:
        if r["status"] == "flaky":
            culprit = r["culprit"].split()
            named = (
                culprit[0] if len(culprit) == 1 else f"its whole selection ({len(culprit)} tests)"
            )
            print(
                f"\nflaky: {r['key']} ({r['was']}): {named} fails unmutated too {r.get('clean', '')}"
            )
    print()
    for r in results:
        if r["status"] == "survived":
            print(f"{r['module']}:{r['line']}  {r['original']}  ->  {r['mutated']}")


def _cells(row: Counter[str]) -> str:
    score = f"{row['killed'] / row['run']:.0%}" if row["run"] else "-"
    cells = [str(row[c]) for c in ("generated", "run", "killed", "survived", "no tests")]
    cells += [str(row["timeout"]), str(row["flaky"]), score]
    return "".join(f" {c:>9}" for c in cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mutation"))
    parser.add_argument("--budget", type=float, default=4200.0, help="seconds of mutant runs")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if not args.report:
        prepare(args.workdir, args.workers)
        run(args.workdir, args.budget, args.workers)
    report(args.workdir)


if __name__ == "__main__":
    main()
