"""PEP 517 backend for commy: setuptools.build_meta, plus a wheel writer of
its own for when the `wheel` package is not installed.

Why: `python3 -m venv v` gives a venv with pip and setuptools but without
`wheel`, and setuptools older than 70.1 needs `wheel` for bdist_wheel. With
no package index to fetch it from, `pip install --no-build-isolation ./python`
would fail. A wheel is a zip with a dist-info directory, so we write it
from what `setup.py build` produced."""

import base64
import hashlib
import os
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

from setuptools import build_meta as _meta

NAME = "commy"
VERSION = "1.0.0"
HERE = Path(__file__).resolve().parent

build_sdist = _meta.build_sdist
get_requires_for_build_sdist = _meta.get_requires_for_build_sdist


def _have_wheel():
    try:
        import wheel.bdist_wheel  # noqa: F401
        return True
    except ImportError:
        return False


def get_requires_for_build_wheel(config_settings=None):
    return _meta.get_requires_for_build_wheel(config_settings) if _have_wheel() else []


def _tag():
    impl = "cp" if sys.implementation.name == "cpython" else sys.implementation.name[:2]
    py = f"{impl}{sys.version_info[0]}{sys.version_info[1]}"
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{py}-{py}-{plat}"


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if _have_wheel():
        return _meta.build_wheel(wheel_directory, config_settings, metadata_directory)
    with tempfile.TemporaryDirectory(prefix="commy-build-") as tmp:
        build_base = Path(tmp) / "build"
        subprocess.check_call([sys.executable, "setup.py", "build", "--build-base", str(build_base)], cwd=HERE)
        libs = [p for p in build_base.iterdir() if p.name.startswith("lib")]
        if len(libs) != 1:
            raise RuntimeError(f"commy: expected one build/lib* directory, found {libs}")
        lib = libs[0]
        tag = _tag()
        dist_info = f"{NAME}-{VERSION}.dist-info"
        wheel_name = f"{NAME}-{VERSION}-{tag}.whl"
        metadata = (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
                    "Summary: Live data structures shared between processes through a memory-mapped file\n"
                    "Requires-Python: >=3.8\n").encode()
        wheel_meta = (f"Wheel-Version: 1.0\nGenerator: commy_build_backend\nRoot-Is-Purelib: false\nTag: {tag}\n").encode()
        records = []
        os.makedirs(wheel_directory, exist_ok=True)
        with zipfile.ZipFile(Path(wheel_directory) / wheel_name, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(lib.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    arc = path.relative_to(lib).as_posix()
                    data = path.read_bytes()
                    zf.writestr(arc, data)
                    records.append(_record_line(arc, data))
            for fname, data in (("METADATA", metadata), ("WHEEL", wheel_meta)):
                arc = f"{dist_info}/{fname}"
                zf.writestr(arc, data)
                records.append(_record_line(arc, data))
            records.append(f"{dist_info}/RECORD,,")
            zf.writestr(f"{dist_info}/RECORD", "\n".join(records) + "\n")
        return wheel_name
