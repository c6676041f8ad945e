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
        subprocess.check_call([swig, "-python", "-builtin", "-I" + str(ROOT / "abi"), "-I" + str(ROOT / "bindings"),
                               "-outdir", str(gen), "-o", str(wrap), str(interface)])
        # The generated shadow module goes next to the extension in the package.
        pkg_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        pkg_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(gen / "native.py", pkg_dir / "native.py")
        core = sorted(str(p) for p in _require(ROOT / "core").glob("*.c"))
        if not core:
            sys.exit(f"commy: no C sources in {ROOT / 'core'}")
        ext.sources = [str(wrap)] + core
        super().build_extension(ext)


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
