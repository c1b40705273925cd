"""What produced the results: code version, package versions, platform."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# Distributions whose versions change results or their speed.
PACKAGES = ("vocflow", "torch", "torchvision", "snakemake", "numpy", "pandas", "scikit-learn",
            "albumentations", "opencv-python-headless", "pydensecrf2", "matplotlib",
            "iterative-stratification")


def _git(repo: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    done = subprocess.run([git, "-C", str(repo), *args], capture_output=True, text=True,
                          timeout=30, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def git_version(repo: str | Path | None) -> str:
    """``<commit>`` (plus "with uncommitted changes" when tracked files differ), or why not."""
    if not repo or not Path(repo).is_dir():
        return "unknown (no workflow directory given)"
    commit = _git(Path(repo), "rev-parse", "HEAD")
    if not commit:
        return "unknown (not a git checkout, or git is not installed)"
    dirty = _git(Path(repo), "status", "--porcelain", "--untracked-files=no")
    return f"{commit} with uncommitted changes" if dirty else commit


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def platform_summary() -> dict[str, str]:
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "machine": platform.machine()}
