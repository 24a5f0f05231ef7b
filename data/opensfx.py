#!/usr/bin/env python
"""OpenSFX (Debian package ``openttd-opensfx``): read its one container and write its recorded
effects out as WAV files.

The container ``opensfx.cat`` holds 71 recorded effects (trains, aircraft, road vehicles, ships,
animals, crashes, industry, interface sounds; 44.1 kHz mono, 0.06-4 s, 149 s in all) that no
standard tool reads. ``benchmarks/sound_sets.py`` labels them for the similar-sound benchmark;
``write_effects`` gives them to training as recorded background noise (``audio2vec train --noise
DIR``) for the *match* model, whose benchmarks never use OpenSFX::

    python data/opensfx.py --out /work/train_audio/recorded_fx/opensfx
"""

from __future__ import annotations

import argparse
import re
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from system import require_debian_package  # noqa: E402

OPENSFX_CAT = Path("/usr/share/games/openttd/baseset/opensfx/opensfx.cat")
#: a RIFF WAV header alone: an entry without audio
EMPTY_WAV_BYTES = 44


def opensfx_entries() -> list[dict]:
    """The OpenSFX container: ``[{index, name, credit, wav (RIFF bytes), originals}]``.

    Layout: a table of (offset | 0x80000000, size) pairs, the first offset giving the table size;
    each entry is a length byte, a NUL-terminated name/credit string, then a RIFF WAV of ``size``
    bytes.
    """
    require_debian_package("openttd-opensfx", OPENSFX_CAT)
    data = OPENSFX_CAT.read_bytes()
    n = (struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF) // 8
    out = []
    for i in range(n):
        off, size = struct.unpack_from("<II", data, 8 * i)
        off &= 0x7FFFFFFF
        ln = data[off]
        text = data[off + 1 : off + 1 + ln].rstrip(b"\0").decode("utf-8", "replace")
        wav = data[off + 1 + ln : off + 1 + ln + size]  # size counts the RIFF file only
        m = re.match(r'"(.*?)"\.?\s*(.*)', text)
        name, credit = (m.group(1), m.group(2)) if m else (text, "")
        originals = re.findall(r'"([^"]+\.(?:wav|mp3|aif|aiff|flac|ogg))"', credit, flags=re.IGNORECASE)
        m2 = re.search(r'Orig(?:i)?nal "([^"]+)"', credit)
        if m2 and m2.group(1) not in originals:
            originals.append(m2.group(1))
        if not originals:  # made by the editor: one source per author
            m3 = re.search(r"By ([^.]+)\.", credit)
            originals = [f"by {m3.group(1).strip()}" if m3 else f"entry {i}"]
        out.append({"index": i, "name": name, "credit": credit, "wav": wav, "originals": originals})
    return out


def write_effects(out: Path) -> list[Path]:
    """Write every entry that holds audio as ``OUT/<index, 2 digits>.wav`` (the container's own
    RIFF bytes, unchanged); returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for e in opensfx_entries():
        if len(e["wav"]) > EMPTY_WAV_BYTES:
            path = out / f"{e['index']:02d}.wav"
            path.write_bytes(e["wav"])
            written.append(path)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder to write the effects into")
    args = ap.parse_args(argv)
    print(f"wrote {len(write_effects(args.out))} OpenSFX effects to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
