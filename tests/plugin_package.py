"""Build an outside plugin package and install it into a fresh venv that sees Syncline's environment.

The package is its own project (pyproject with Syncline entry points) built by a minimal PEP 517/660
backend written next to it (an editable wheel: a .pth to the source and the dist-info with the entry
points), so installing needs no build packages and no index; any backend that writes the entry
points (setuptools, hatchling, flit) does the same job for a real plugin. The venv is created without
pip and reuses the development venv's site-packages through a `.pth` (`site.addsitedir`, so
Syncline's own editable install is found as it is there); pip runs from the development venv against
the new interpreter (`pip --python`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

BACKEND = """
import base64, hashlib, os, zipfile

NAME, VERSION = {module!r}, "0.1.0"
DIST = f"{{NAME}}-{{VERSION}}.dist-info"
FILES = {{
    f"{{DIST}}/METADATA": f"Metadata-Version: 2.1\\nName: {dist}\\nVersion: {{VERSION}}\\n",
    f"{{DIST}}/WHEEL": "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    f"{{DIST}}/entry_points.txt": {entry_points!r},
}}


def _wheel(directory, extra):
    files = {{**FILES, **extra}}
    name = f"{{NAME}}-{{VERSION}}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(directory, name), "w") as wheel:
        for path, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
            wheel.writestr(path, data)
        wheel.writestr(f"{{DIST}}/RECORD", "\\n".join([*record, f"{{DIST}}/RECORD,,"]) + "\\n")
    return name


def get_requires_for_build_wheel(config_settings=None):
    return []


get_requires_for_build_editable = get_requires_for_build_wheel


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {{f"{{NAME}}.pth": os.path.abspath(os.path.dirname(__file__)) + "\\n"}})


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    source = open(os.path.join(os.path.dirname(__file__), NAME, "__init__.py")).read()
    return _wheel(wheel_directory, {{f"{{NAME}}/__init__.py": source}})
"""


def install_plugin(base: Path, dist: str, module: str, entry_points: dict[str, dict[str, str]], source: str) -> Path:
    """Write the package `dist` (one module `module` holding `source`) with `entry_points`
    ({group: {name: "module:ATTR"}}), install it into a new venv under `base`; return its python."""
    package = base / "plugin"
    (package / module).mkdir(parents=True)
    groups = "".join(
        f'\n[project.entry-points."{group}"]\n' + "".join(f'{name} = "{target}"\n' for name, target in names.items())
        for group, names in entry_points.items()
    )
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "wheel_backend"\nbackend-path = ["."]\n\n'
        f'[project]\nname = "{dist}"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n{groups}'
    )
    ini = "".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in names.items())
        for group, names in entry_points.items()
    )
    (package / "wheel_backend.py").write_text(BACKEND.format(module=module, dist=dist, entry_points=ini))
    (package / module / "__init__.py").write_text(source)
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    ours = sysconfig.get_paths()["purelib"]
    (site_packages / "syncline_dev.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps"]
    subprocess.run(
        [*pip, "--no-build-isolation", "--no-index", "-e", str(package)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return python


def run_in(python: Path, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python *args` with the development venv's variables removed."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(python), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
