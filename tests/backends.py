"""Build backends the fake upstream serves, for tests that need real PEP 517 behaviour.

* ``mesonlike``: tinybackend whose ``get_requires_for_build_wheel`` asks for
  tools it cannot find, as meson-python does: ``mlninja`` everywhere and
  ``mlpatchelf`` on Linux.  Its ``build_wheel`` fails unless they are
  importable, so a build on the target proves the bundle carried them.
* ``setuptools`` (a stand-in, version 99.0) with ``build_meta.__legacy__``:
  it runs ``setup.py`` with a recording ``setup()``, so a legacy sdist's
  dependencies come only from running it, as with the real one.
* ``wheel`` (a stand-in): pip's legacy default asks for it.
"""

from __future__ import annotations

from pathlib import Path

from tests.distbuilder import TINYBACKEND_SOURCE, make_wheel

MESONLIKE_SOURCE = (
    TINYBACKEND_SOURCE
    + r"""

import shutil as _shutil
import sys as _sys


def get_requires_for_build_wheel(config_settings=None):
    wanted = []
    if _shutil.which("mlninja") is None:
        wanted.append("mlninja")
    if _sys.platform.startswith("linux") and _shutil.which("mlpatchelf") is None:
        wanted.append("mlpatchelf")
    return wanted


_tiny_build_wheel = build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    import mlninja  # noqa: F401 - the dynamic build requirement must be installed
    if _sys.platform.startswith("linux"):
        import mlpatchelf  # noqa: F401
    return _tiny_build_wheel(wheel_directory, config_settings, metadata_directory)
"""
)

FAKE_SETUPTOOLS_INIT = r'''"""A stand-in for setuptools: setup() records its arguments."""
__version__ = "99.0"
recorded = {}


def setup(**kwargs):
    recorded.clear()
    recorded.update(kwargs)


def find_packages(where=".", exclude=()):
    import os
    return sorted(d for d in os.listdir(where) if os.path.isfile(os.path.join(where, d, "__init__.py")))
'''

FAKE_BUILD_META = r'''"""build_meta.__legacy__ of the setuptools stand-in: run setup.py, then build like tinybackend."""
import base64, hashlib, os, re, sys, zipfile
import setuptools


def _run_setup():
    sys.path.insert(0, os.getcwd())
    with open("setup.py") as f:
        code = f.read()
    exec(compile(code, "setup.py", "exec"), {"__name__": "__main__", "__file__": "setup.py"})
    return dict(setuptools.recorded)


def _escape(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def _metadata(kw):
    lines = ["Metadata-Version: 2.1", "Name: " + kw["name"], "Version: " + kw["version"]]
    if kw.get("python_requires"):
        lines.append("Requires-Python: " + kw["python_requires"])
    for req in kw.get("install_requires") or []:
        lines.append("Requires-Dist: " + req)
    return ("\n".join(lines) + "\n").encode()


def _hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


class _Legacy:
    def get_requires_for_build_wheel(self, config_settings=None):
        return ["wheel"]

    def prepare_metadata_for_build_wheel(self, metadata_directory, config_settings=None):
        kw = _run_setup()
        dist_info = _escape(kw["name"]) + "-" + kw["version"] + ".dist-info"
        os.makedirs(os.path.join(metadata_directory, dist_info), exist_ok=True)
        with open(os.path.join(metadata_directory, dist_info, "METADATA"), "wb") as f:
            f.write(_metadata(kw))
        return dist_info

    def build_wheel(self, wheel_directory, config_settings=None, metadata_directory=None):
        kw = _run_setup()
        name, version = _escape(kw["name"]), kw["version"]
        dist_info = name + "-" + version + ".dist-info"
        entries = {}
        for pkg in kw.get("packages") or []:
            for root, _, files in os.walk(pkg):
                for fname in sorted(files):
                    if fname.endswith(".py"):
                        path = os.path.join(root, fname)
                        with open(path, "rb") as f:
                            entries[path.replace(os.sep, "/")] = f.read()
        entries[dist_info + "/METADATA"] = _metadata(kw)
        entries[dist_info + "/WHEEL"] = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        record = "".join("%s,%s,%d\n" % (a, _hash(d), len(d)) for a, d in entries.items())
        entries[dist_info + "/RECORD"] = (record + dist_info + "/RECORD,,\n").encode()
        filename = name + "-" + version + "-py3-none-any.whl"
        with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
            for arc, data in entries.items():
                zf.writestr(zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0)), data)
        return filename

    def get_requires_for_build_sdist(self, config_settings=None):
        return []


__legacy__ = _Legacy()
get_requires_for_build_wheel = __legacy__.get_requires_for_build_wheel
prepare_metadata_for_build_wheel = __legacy__.prepare_metadata_for_build_wheel
build_wheel = __legacy__.build_wheel
'''


def make_mesonlike_wheels(dest_dir: str | Path) -> list[Path]:
    """The ``mesonlike`` backend and the two tools it asks for."""
    return [
        make_wheel(dest_dir, "mesonlike", "1.0", files={"mesonlike/__init__.py": MESONLIKE_SOURCE}),
        make_wheel(dest_dir, "mlninja", "1.11"),
        make_wheel(dest_dir, "mlpatchelf", "0.17"),
    ]


def make_fake_setuptools_wheels(dest_dir: str | Path) -> list[Path]:
    """The setuptools and wheel stand-ins pip's legacy build asks for."""
    return [
        make_wheel(
            dest_dir,
            "setuptools",
            "99.0",
            files={
                "setuptools/__init__.py": FAKE_SETUPTOOLS_INIT,
                "setuptools/build_meta.py": FAKE_BUILD_META,
            },
        ),
        make_wheel(dest_dir, "wheel", "0.40.0"),
    ]
