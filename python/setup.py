"""Builds the commy package: SWIG generates the extension from
bindings/commy.i into the build directory, and libcommy's core/*.c is
compiled into the same extension (bundled), so nothing has to be installed
or put on LD_LIBRARY_PATH first.

The C sources are found in the repository this directory belongs to
(../abi, ../core, ../bindings), or in COMMY_SOURCE_DIR if it is set."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("COMMY_SOURCE_DIR", HERE.parent)).resolve()


def _require(path):
    if not path.exists():
        sys.exit(f"commy: {path} is missing; build from a commy source tree or set COMMY_SOURCE_DIR to one")
    return path


class build_ext(_build_ext):
    """Runs SWIG into build_temp (never into the source tree), then compiles
    the generated wrapper together with the core sources."""

    def build_extension(self, ext):
        swig = shutil.which(os.environ.get("SWIG", "swig"))
        if swig is None:
            sys.exit("commy: swig was not found on PATH; install SWIG 4 (apt-get install swig) or set SWIG=/path/to/swig")
        interface = _require(ROOT / "bindings" / "commy.i")
        gen = Path(self.build_temp).resolve() / "swig"
        gen.mkdir(parents=True, exist_ok=True)
        wrap = gen / "commy_wrap.c"
        session = _session_deps()
        if session is None:
            print("commy: building without sessions (commy.Session): client/session.c, or libwebsockets, "
                  "libcjson or openssl (pkg-config), is missing", file=sys.stderr)
        subprocess.check_call([swig, "-python", "-builtin", "-I" + str(ROOT / "abi"), "-I" + str(ROOT / "bindings")]
                              + (["-DCOMMY_NO_SESSION"] if session is None else [])
                              + ["-outdir", str(gen), "-o", str(wrap), str(interface)])
        # The generated shadow module goes next to the extension in the package.
        pkg_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        pkg_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(gen / "native.py", pkg_dir / "native.py")
        core = sorted(str(p) for p in _require(ROOT / "core").glob("*.c"))
        if not core:
            sys.exit(f"commy: no C sources in {ROOT / 'core'}")
        ext.sources = [str(wrap)] + core
        if session is not None:
            # The session client (commy_session_*) and the wire codec it shares with the server.
            ext.sources += sorted(str(p) for p in (ROOT / "client").glob("*.c"))
            ext.include_dirs = list(ext.include_dirs) + [str(ROOT / "client")] + session["include_dirs"]
            ext.library_dirs = list(ext.library_dirs or []) + session["library_dirs"]
            ext.libraries = list(ext.libraries or []) + session["libraries"]
        super().build_extension(ext)


def _session_deps():
    """pkg-config's flags for the session client, or None if it cannot be built."""
    if not (ROOT / "client" / "session.c").exists() or not (ROOT / "abi" / "commy" / "session.h").exists():
        return None
    pkgs = ["libwebsockets", "libcjson", "openssl"]
    try:
        cflags = subprocess.check_output(["pkg-config", "--cflags"] + pkgs, text=True, stderr=subprocess.DEVNULL).split()
        libs = subprocess.check_output(["pkg-config", "--libs"] + pkgs, text=True, stderr=subprocess.DEVNULL).split()
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"include_dirs": [f[2:] for f in cflags if f.startswith("-I")],
            "library_dirs": [f[2:] for f in libs if f.startswith("-L")],
            "libraries": [f[2:] for f in libs if f.startswith("-l")]}


setup(
    ext_modules=[
        Extension(
            "commy._native",
            sources=[],  # filled in by build_ext once SWIG has run
            include_dirs=[str(ROOT / "abi"), str(ROOT / "core")],
            define_macros=[("_GNU_SOURCE", None), ("COMMY_BUILDING_LIBRARY", None)],
            extra_compile_args=["-std=gnu11", "-O2", "-fvisibility=hidden", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers"],
            extra_link_args=["-pthread"],
        )
    ],
    cmdclass={"build_ext": build_ext},
)
