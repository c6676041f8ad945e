#!/usr/bin/env python3
"""Builds the commy package, installs it into a fresh virtual environment
(pip install --no-build-isolation, no package index) and runs every test in
python/tests with it. The last line is "N passed, N failed".

    python3 python/run_tests.py                 # fresh venv in a temp dir
    python3 python/run_tests.py --build-dir D   # quicker: setup.py build into D, no venv
    python3 python/run_tests.py --python P      # use an interpreter that already has commy
    python3 python/run_tests.py -k Map          # only tests whose id contains "Map"
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE / "tests"


def inner(pattern):
    """Runs in the interpreter that has commy; prints the summary line."""
    # Python put this script's directory first on sys.path: drop it, or the
    # source tree's commy/ (which has no extension) would shadow the build.
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != HERE]
    sys.path.insert(0, str(TESTS))
    suite = unittest.defaultTestLoader.discover(str(TESTS), pattern="test_*.py", top_level_dir=str(TESTS))

    def flatten(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                yield from flatten(t)
            else:
                yield t

    tests = [t for t in flatten(suite) if not pattern or pattern in t.id()]
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(unittest.TestSuite(tests))
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = max(0, result.testsRun - failed - len(result.skipped))
    print(f"{passed} passed, {failed} failed" + (f" ({len(result.skipped)} skipped)" if result.skipped else ""))
    return 0 if failed == 0 and result.testsRun > 0 else 1


def ensure_server(env):
    """The session tests start a real commy-server: build it if there is none yet."""
    root = HERE.parent
    build = Path(env.get("COMMY_BUILD") or root / "build")
    env["COMMY_BUILD"] = str(build)
    if env.get("COMMY_SERVER") or (build / "server" / "commy-server").exists():
        return
    print(f"building commy-server in {build} for the session tests", flush=True)
    try:
        subprocess.check_call(["cmake", "-S", str(root), "-B", str(build), "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
                              stdout=subprocess.DEVNULL)
        subprocess.check_call(["cmake", "--build", str(build), "--target", "commy-server", "-j2"],
                              stdout=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"building commy-server failed ({e}); the session tests will fail")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--python", help="an interpreter that can already import commy")
    ap.add_argument("--build-dir", help="build with setup.py into this directory and test from there")
    ap.add_argument("--keep", action="store_true", help="keep the temporary venv")
    ap.add_argument("-k", dest="pattern", default="", help="only tests whose id contains this")
    args = ap.parse_args()
    if args.inner:
        return inner(args.pattern)

    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    ensure_server(env)
    tmp = None
    try:
        if args.python:
            python = args.python
        elif args.build_dir:
            build = Path(args.build_dir).resolve()
            subprocess.check_call([sys.executable, "setup.py", "-q", "build", "--build-base", str(build)], cwd=HERE)
            libs = [p for p in build.iterdir() if p.name.startswith("lib")]
            extra = [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
            env["PYTHONPATH"] = os.pathsep.join([str(libs[0])] + extra)
            python = sys.executable
        else:
            tmp = tempfile.mkdtemp(prefix="commy-venv-")
            venv = Path(tmp) / "v"
            print(f"creating a venv in {venv} and installing ./python into it", flush=True)
            subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
            python = str(venv / "bin" / "python")
            subprocess.check_call([python, "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation", str(HERE)],
                                  env=env)
        # Run from outside the source tree, so `import commy` finds the installed package.
        rc = subprocess.call([python, str(Path(__file__).resolve()), "--inner", "-k", args.pattern], env=env,
                             cwd=tempfile.gettempdir())
        return rc
    except subprocess.CalledProcessError as e:
        print(f"build or install failed: {e}")
        print("0 passed, 1 failed")
        return 1
    finally:
        if tmp and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
