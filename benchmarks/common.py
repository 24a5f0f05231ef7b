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


def music_library_2h(minutes: float = 120.0) -> list[Path]:
    """At least ``minutes`` of OGG and MP3 music: every SuperTuxKart piece (OGG, 59 min), each also
    transcoded to MP3 at 128 kbps, then at 64 kbps until the total is reached (MP3s made once with
    ffmpeg into the benchmark cache; different bytes, so each file is decoded and embedded)."""
    import soundfile as sf
    from concurrent.futures import ThreadPoolExecutor

    require_debian_package("supertuxkart-data", STK_MUSIC)
    require_debian_package("ffmpeg", Path("/usr/bin/ffmpeg"))
    pieces = sorted(STK_MUSIC.glob("*.ogg"))
    plan, total = [], 0.0
    for kbps in (None, 128, 64):
        for src in pieces:
            if total >= minutes * 60:
                break
            plan.append((src, kbps))
            total += sf.info(str(src)).duration
    out = CACHE / "music_mp3"
    out.mkdir(parents=True, exist_ok=True)

    def made(item) -> Path:
        src, kbps = item
        if kbps is None:
            return src
        dst = out / f"{src.stem}_{kbps}k.mp3"
        if not dst.exists():
            tmp = dst.with_suffix(".part.mp3")
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:a", "libmp3lame", "-b:a", f"{kbps}k", str(tmp)], check=True)
            tmp.rename(dst)
        return dst

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        return list(pool.map(made, plan))


#: held-out music21 works (never trained on) rendered with sf_GMbank (a soundfont training never
#: used), cut in manifest order into disjoint parts: (first minute, last minute) of the pool
HELDOUT_PARTS = {"library": (0, 70), "outsiders": (70, 100), "calibration_library": (100, 130), "calibration_outsiders": (130, 160)}


def heldout_music(part: str) -> list[Path]:
    """One part of the held-out music pool (see :data:`HELDOUT_PARTS`), rendered once into the cache.

    Works are whole and never shared between parts, so ``outsiders`` are truly outside a library
    made of ``library``, and calibration data never overlaps benchmark data.
    """
    require_debian_package("fluidsynth", Path("/usr/bin/fluidsynth"))
    require_debian_package("csound-soundfont", Path("/usr/share/sounds/sf2/sf_GMbank.sf2"))
    out = CACHE / "music_heldout"
    total = max(hi for _, hi in HELDOUT_PARTS.values())
    if not (out / "manifest.json").exists():
        subprocess.run(
            [sys.executable, str(REPO / "data" / "render.py"), "music", "--out", str(out), "--minutes", str(total),
             "--soundfont", "/usr/share/sounds/sf2/sf_GMbank.sf2", "--split", "heldout", "--seed", "3", "--jobs", "2"],
            check=True,
        )
    lo, hi = HELDOUT_PARTS[part]
    files, t = [], 0.0
    for e in json.loads((out / "manifest.json").read_text()):
        if lo * 60 <= t < hi * 60:
            files.append(out / e["file"])
        t += e["duration_s"]
    return files


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
