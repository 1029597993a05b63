"""The PEP 517 build backend that pyproject.toml names: `pip install .` and `pip wheel .`.

The wheel holds python/nnbackprop/*.py, the libnnbackprop.so that scripts/build-lib.sh builds
(the Swift runtime linked in statically) and the libomp.so.5 that library was linked against.
The library's RUNPATH starts with $ORIGIN, so the libomp beside it is the one the loader picks,
and _lib.py finds the library beside itself: nothing outside the wheel is needed but libc,
libstdc++, libgcc_s, libm and zlib.

Why not setuptools: the wheel is neither pure Python nor an extension module. ctypes code runs
on any Python 3 (py3, ABI none), but the library is native code for one platform; setuptools
only tags that right with a subclassed bdist_wheel, and its own build/lib would land in the
library's build/lib. Why linux_x86_64 and not manylinux: nobody audited the glibc and libstdc++
symbol versions the library needs (auditwheel does that), so the plain platform tag is the
honest one. pip installs such wheels; PyPI refuses them.

No sdist: it would have to carry the whole Swift package; build wheels from a checkout
(`pip install .`, `pip install git+URL`). `pip install -e .` puts python/ on sys.path and
builds the library in build/lib, where _lib.py also looks.
"""

import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
# Fixed timestamps make two builds of the same tree byte-identical.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _version():
    """major.minor.patch from include/nnbackprop.h (install.sh reads the same macros)."""
    header = (ROOT / "include" / "nnbackprop.h").read_text()
    parts = [re.search(rf"#define NNB_VERSION_{p} (\d+)", header) for p in ("MAJOR", "MINOR", "PATCH")]
    if not all(parts):
        raise RuntimeError("include/nnbackprop.h: NNB_VERSION_MAJOR/MINOR/PATCH not found")
    return ".".join(m.group(1) for m in parts)


def _tag():
    if not sys.platform.startswith("linux"):
        raise RuntimeError(f"the nnbackprop wheel is built on Linux only (this is {sys.platform})")
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")  # linux_x86_64
    return f"py3-none-{platform}"


def _dist_info(version, tag):
    """The .dist-info files but RECORD, from pyproject.toml's [project] table."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {version}",
             f"Summary: {project['description']}", f"Requires-Python: {project['requires-python']}"]
    lines += [f"Requires-Dist: {d}" for d in project.get("dependencies", [])]
    for extra, deps in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {d}; extra == "{extra}"' for d in deps]
    lines.append("Description-Content-Type: text/markdown")
    metadata = "\n".join(lines) + "\n\n" + (ROOT / project["readme"]).read_text()
    wheel = f"Wheel-Version: 1.0\nGenerator: nnbackprop_build\nRoot-Is-Purelib: false\nTag: {tag}\n"
    return {"METADATA": metadata.encode(), "WHEEL": wheel.encode()}


def _build_library():
    """Runs scripts/build-lib.sh (incremental) and returns build/lib/libnnbackprop.so."""
    script = ROOT / "scripts" / "build-lib.sh"
    try:
        subprocess.run([str(script)], cwd=ROOT, check=True, stdout=sys.stderr)
    except (OSError, subprocess.CalledProcessError) as error:
        raise RuntimeError(f"{script} failed ({error}); it needs the Swift toolchain on PATH") from None
    return ROOT / "build" / "lib" / "libnnbackprop.so"


def _libomp(library):
    """The libomp.so.5 file the library resolves to, or None when it was built without OpenMP."""
    if not shutil.which("ldd"):
        raise RuntimeError("ldd (glibc) is needed to find the libomp.so.5 to put in the wheel")
    out = subprocess.run(["ldd", str(library)], check=True, capture_output=True, text=True).stdout
    if "libomp.so.5" not in out:
        return None
    found = re.search(r"^\s*libomp\.so\.5 => (\S+)", out, re.MULTILINE)
    if not found or found.group(1) == "not":  # ldd prints "libomp.so.5 => not found"
        raise RuntimeError(f"{library} needs libomp.so.5, which the loader cannot find:\n{out}")
    return Path(found.group(1)).resolve()  # the real file, not the Debian symlink


def _write_wheel(directory, version, tag, files):
    """Writes the wheel from [(path in wheel, bytes, mode)], adding .dist-info and RECORD."""
    dist_info = f"nnbackprop-{version}.dist-info"
    files = files + [(f"{dist_info}/{name}", data, 0o644) for name, data in _dist_info(version, tag).items()]
    record = []
    name = f"nnbackprop-{version}-{tag}.whl"
    with zipfile.ZipFile(Path(directory) / name, "w", zipfile.ZIP_DEFLATED) as wheel:
        def add(path, data, mode):
            info = zipfile.ZipInfo(path, ZIP_DATE)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)

        for path, data, mode in files:
            add(path, data, mode)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        add(f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode(), 0o644)
    return name


def _package_files():
    """python/nnbackprop's sources, without caches or a library someone copied there."""
    package = ROOT / "python" / "nnbackprop"
    return [(f"nnbackprop/{p.relative_to(package).as_posix()}", p.read_bytes(), 0o644)
            for p in sorted(package.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".so") and ".so." not in p.name]


# PEP 517 / PEP 660 hooks.

def get_requires_for_build_wheel(config_settings=None):
    return []


get_requires_for_build_editable = get_requires_for_build_wheel


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    version = _version()
    dist_info = Path(metadata_directory) / f"nnbackprop-{version}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    for name, data in _dist_info(version, _tag()).items():
        (dist_info / name).write_bytes(data)
    return dist_info.name


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    version, tag = _version(), _tag()
    library = _build_library()
    files = _package_files() + [("nnbackprop/libnnbackprop.so", library.read_bytes(), 0o755)]
    libomp = _libomp(library)
    if libomp is not None:
        files.append(("nnbackprop/libomp.so.5", libomp.read_bytes(), 0o755))
        # libomp is LLVM's (Apache-2.0 WITH LLVM-exception): its licence travels with it.
        notices = sorted(Path("/usr/share/doc").glob("libomp5*/copyright"))
        if notices:
            files.append(("nnbackprop/LICENSE.libomp", notices[0].read_bytes(), 0o644))
    return _write_wheel(wheel_directory, version, tag, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    version, tag = _version(), _tag()
    _build_library()
    pth = f"{ROOT / 'python'}\n".encode()
    return _write_wheel(wheel_directory, version, tag, [("nnbackprop.pth", pth, 0o644)])
