"""Shared helpers of the benchmarks: the machine, allowed data sources, babble noise."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "benchmarks" / ".cache"
STK_MUSIC = Path("/usr/share/games/supertuxkart/data/music")


def machine() -> dict:
    """CPU model, cores, RAM and versions, printed with every benchmark result."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def require_debian_package(package: str, path: Path) -> None:
    """Install a Debian package when ``path`` is missing (benchmarks load allowed data from the system)."""
    if path.exists():
        return
    print(f"{path} missing: installing Debian package {package}", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(sudo + ["apt-get", "install", "-y", "--no-install-recommends", package], check=True, env=env)


def stk_music_library() -> list[Path]:
    """The SuperTuxKart pieces (OGG), without their ``_fast`` tempo variants."""
    require_debian_package("supertuxkart-data", STK_MUSIC)
    return sorted(p for p in STK_MUSIC.glob("*.ogg") if not p.stem.endswith(("_fast", "_f")))


def babble_speech(minutes: float = 6.0) -> list[Path]:
    """espeak-ng speech for babble noise, rendered once into the benchmark cache (held-out split)."""
    require_debian_package("espeak-ng", Path("/usr/bin/espeak-ng"))
    out = CACHE / "speech"
    if not (out / "manifest.json").exists():
        subprocess.run(
            [sys.executable, str(REPO / "data" / "render.py"), "speech", "--out", str(out),
             "--minutes", str(minutes), "--seed", "7", "--split", "heldout"],
            check=True,
        )
    return [out / e["file"] for e in json.loads((out / "manifest.json").read_text())]


def write_result(name: str, result: dict, *, markdown: str | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` (and ``<name>.md`` when ``markdown`` is given)."""
    out = REPO / "benchmarks" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if markdown is not None:
        out.with_suffix(".md").write_text(markdown.rstrip() + "\n")
    return out
