"""Blind each check in turn and report any that no fast-tier test catches.

A check is *blind* when its SQL can never return a row (or, for a check computed in Python, when
it always passes). Every check must be caught: blinding it must make at least one test of the
fast tier (``pytest -m "not stack"``) fail. For each check this script

1. copies the working tree (the files git tracks or would track, as they are on disk) into one
   scratch directory, once;
2. blinds the check there: a check SQL file ``sql/<domain>/checks/<name>.sql`` becomes
   ``select * from (<its SQL>) where false``; ``grain_is_unique`` (built by
   ``c360_assets/lib/models.py:grain_check_sql``) gets ``and false`` in its ``having``;
   ``quarantine_rate`` (``c360_assets/defs/ingest/assets.py``) always passes;
3. runs the fast-tier tests that cover it (the test files that name the check; ``--all-tests``:
   the whole fast tier) in the scratch copy, stopping at the first failure;
4. restores the file in the scratch copy before the next check.

The repository itself is never edited. Before blinding anything, the same tests run once on the
unchanged copy and must pass (``--no-baseline`` skips that), so a failure is the blind check's.

    .venv/bin/python scripts/blind_checks.py                 # every check
    .venv/bin/python scripts/blind_checks.py --check fx_rates_available --check grain_is_unique

Prints one line per check (caught by which test, or NOT CAUGHT) and exits 1 when any check is
not caught (2 when the baseline fails or a check cannot be blinded).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = REPO / ".venv" / "bin" / "python"
FAST = ["-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not stack"]


@dataclass(frozen=True)
class Check:
    name: str  # the check's name, as the asset graph shows it
    path: str  # the file blinded, relative to the repository
    blind: Callable[[str], str]


def _blind_sql(text: str) -> str:
    return f"select * from (\n{text}\n) as blind where false\n"


def _replace_once(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        if text.count(old) != 1:
            raise ValueError(f"expected {old!r} exactly once")
        return text.replace(old, new)

    return edit


PYTHON_CHECKS = (
    Check(
        "grain_is_unique",
        "c360_assets/lib/models.py",
        _replace_once("having count(*) > 1", "having count(*) > 1 and false"),
    ),
    Check(
        "quarantine_rate",
        "c360_assets/defs/ingest/assets.py",
        _replace_once("passed=rate <= QUARANTINE_WARN_RATE", "passed=True"),
    ),
)


def all_checks() -> list[Check]:
    sql = [
        Check(path.stem, str(path.relative_to(REPO)), _blind_sql)
        for path in sorted(REPO.glob("sql/*/checks/*.sql"))
    ]
    return sql + list(PYTHON_CHECKS)


def covering_tests(name: str, all_tests: bool) -> list[str]:
    tests = sorted(REPO.glob("tests/test_*.py"))
    if not all_tests:
        tests = [t for t in tests if re.search(rf"\b{re.escape(name)}\b", t.read_text())]
    return [str(t.relative_to(REPO)) for t in tests]


def scratch_copy() -> Path:
    """The working tree's files (tracked, or untracked and not ignored) in a new directory."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.decode()
    root = Path(tempfile.mkdtemp(prefix="c360-blind-"))
    for relative in filter(None, listed.split("\0")):
        source = REPO / relative
        if source.is_file():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    found = subprocess.run(
        [str(PYTHON), "-c", "import c360_assets; print(c360_assets.__file__)"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not found.startswith(str(root)):
        raise RuntimeError(f"the scratch copy imports c360_assets from {found}, not from {root}")
    return root


def run_tests(root: Path, tests: list[str]) -> tuple[int, str]:
    """pytest's exit code, and the first failing test (or the last lines of its output)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [str(PYTHON), *FAST, *tests], cwd=root, env=env, capture_output=True, text=True
    )
    failed = re.findall(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", done.stdout, re.MULTILINE)
    tail = " | ".join(done.stdout.strip().splitlines()[-2:])
    return done.returncode, failed[0] if failed else tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="append", help="only these checks (repeatable)")
    parser.add_argument("--all-tests", action="store_true", help="run the whole fast tier")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unchanged run")
    args = parser.parse_args(argv)

    checks = [c for c in all_checks() if not args.check or c.name in args.check]
    unknown = set(args.check or ()) - {c.name for c in checks}
    if unknown:
        parser.error(f"no such check: {', '.join(sorted(unknown))}")
    root = scratch_copy()
    try:
        if not args.no_baseline:
            tests = sorted({t for c in checks for t in covering_tests(c.name, args.all_tests)})
            code, detail = run_tests(root, tests)
            if code != 0:
                print(f"baseline: the unchanged tests fail ({detail})", file=sys.stderr)
                return 2
            print(f"baseline: {len(tests)} test files pass unchanged")
        missed, broken = [], []
        for check in checks:
            tests = covering_tests(check.name, args.all_tests)
            target = root / check.path
            original = target.read_text()
            started = time.monotonic()
            try:
                target.write_text(check.blind(original))
                code, detail = run_tests(root, tests) if tests else (5, "no test names it")
            except ValueError as error:
                code, detail = 2, f"cannot blind it: {error}"
            finally:
                target.write_text(original)
            seconds = time.monotonic() - started
            if code == 1:
                verdict = f"caught by {detail}"
            elif code in (0, 5):
                verdict = f"NOT CAUGHT ({len(tests)} test files ran)"
                missed.append(check.name)
            else:
                verdict = f"ERROR (pytest exit {code}: {detail})"
                broken.append(check.name)
            print(f"{check.name:45} {check.path:55} {seconds:6.0f}s  {verdict}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"{len(checks)} checks blinded: {len(checks) - len(missed) - len(broken)} caught, "
        f"{len(missed)} not caught{': ' + ', '.join(missed) if missed else ''}"
        f"{f', {len(broken)} errors: ' + ', '.join(broken) if broken else ''}"
    )
    return 2 if broken else 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
