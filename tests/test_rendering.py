"""data/rendering.py (what training renders and benchmarks share) and data/system.py."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "data"))
import rendering  # noqa: E402
import system  # noqa: E402

SR = 16000
SF2 = Path("/usr/share/sounds/sf2/sf_GMbank.sf2")
SF3 = Path("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3")


def _tone(seconds: float, hz: float = 440.0, amp: float = 0.3) -> np.ndarray:
    return (amp * np.cos(2 * np.pi * hz * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# finishing sounds
# ---------------------------------------------------------------------------------------------


def test_finish_clip_trims_fades_and_normalises():
    y = np.concatenate([np.zeros(SR, np.float32), _tone(0.5), np.zeros(SR, np.float32)])
    out = rendering.finish_clip(y, SR)
    # 10 ms kept before the first loud sample, 50 ms after the last, then faded to 0
    assert len(out) == int(0.01 * SR) + int(0.5 * SR) + int(0.05 * SR)
    assert out.dtype == np.float32 and not np.any(out[: int(0.01 * SR)])
    assert np.max(np.abs(out)) == pytest.approx(10 ** (-1 / 20), rel=1e-6)
    assert out[-1] == 0.0 and np.all(np.abs(out[-int(0.02 * SR):]) <= np.max(np.abs(out)))
    assert len(rendering.finish_clip(y, SR, max_s=0.2)) == int(0.2 * SR)
    assert np.max(np.abs(rendering.finish_clip(y, SR, peak_dbfs=-6.0))) == pytest.approx(10 ** (-6 / 20), rel=1e-6)
    assert rendering.finish_clip(np.zeros(SR, np.float32), SR) is None
    assert rendering.finish_clip(np.full(SR, 5e-5, np.float32), SR) is None  # below the silence floor


def test_trim_silence_keeps_the_silence_asked_for_at_each_end():
    y = np.concatenate([np.zeros(SR), _tone(1.0), np.zeros(2 * SR)])
    assert len(rendering.trim_silence(y, SR, keep_s=0.5)) == int(2.0 * SR)
    assert len(rendering.trim_silence(y, SR, keep_s=0.25, tail_keep_s=0.0)) == int(1.25 * SR)
    assert len(rendering.trim_silence(np.zeros(100), SR)) == 0


def test_peak_normalise_pad_and_mono():
    y = rendering.peak_normalise(np.array([0.1, -0.5, 0.25]), -1.0)
    assert y.dtype == np.float32 and np.max(np.abs(y)) == pytest.approx(10 ** (-1 / 20), rel=1e-6)
    assert y[0] / y[1] == pytest.approx(-0.2)
    silent = np.zeros(10, np.float32)
    assert rendering.peak_normalise(silent) is silent
    assert len(rendering.pad_to(np.ones(5), 12)) == 12 and len(rendering.pad_to(np.ones(15), 12)) == 15
    assert rendering.to_mono(np.array([[1.0, 0.0], [0.5, 0.5]])).tolist() == [0.5, 0.5]
    assert rendering.is_silent(np.array([])) and rendering.is_silent(np.full(4, 5e-5)) and not rendering.is_silent(np.full(4, 0.01))


# ---------------------------------------------------------------------------------------------
# MIDI writer, layout and one render
# ---------------------------------------------------------------------------------------------


def _midi_events(path: Path) -> list[tuple[int, bytes]]:
    """``(absolute tick, message)`` of a format-0 file with running status off (what write_midi writes)."""
    data = path.read_bytes()
    assert data[:4] == b"MThd" and struct.unpack(">IHHH", data[4:14]) == (6, 0, 1, 960) and data[14:18] == b"MTrk"
    end, i, tick, out = 22 + struct.unpack(">I", data[18:22])[0], 22, 0, []
    assert end == len(data)
    while i < end:
        delta = 0
        while True:
            delta, b, i = (delta << 7) | (data[i] & 0x7F), data[i], i + 1
            if not b & 0x80:
                break
        tick += delta
        if data[i] == 0xFF:  # meta: type, length, data
            n = data[i + 2]
            out.append((tick, data[i : i + 3 + n]))
            i += 3 + n
        else:
            n = 2 if data[i] & 0xF0 == 0xC0 else 3
            out.append((tick, data[i : i + n]))
            i += n
    return out


def test_write_midi_round_trip(tmp_path):
    items = [rendering.Item("a", "x", [(0.0, 0.5, 69, 100), (0.5, 0.25, 72, 90)], program=5),
             rendering.Item("b", "y", [(0.0, 0.2, 36, 110)], bank=128, program=0, tail_s=1.0)]
    events, spans = rendering.layout(items)
    assert spans[0] == pytest.approx((0.3, 0.3 + 0.75 + 0.5)) and spans[1][0] == pytest.approx(1.55 + 1.0 + 0.3)
    rendering.write_midi(tmp_path / "t.mid", events)
    got = _midi_events(tmp_path / "t.mid")
    assert got[0] == (0, b"\xff\x51\x03" + (500000).to_bytes(3, "big")) and got[-1][1] == b"\xff\x2f\x00"
    notes = [(t, m) for t, m in got if m[0] & 0xF0 in (0x80, 0x90)]
    # 120 bpm, 960 ticks a quarter: 1920 ticks a second
    assert notes[:4] == [(576, bytes([0x90, 69, 100])), (1536, bytes([0x80, 69, 0])),
                         (1536, bytes([0x90, 72, 90])), (2016, bytes([0x80, 72, 0]))]
    assert (round(2.85 * 1920), bytes([0x99, 36, 110])) in notes
    assert (0, bytes([0xC0, 5])) in got and any(m == bytes([0xC9, 0]) for _, m in got)


def test_render_items_plays_each_item_at_its_pitch(tmp_path):  # fluidsynth, csound-soundfont: `make test` installs them
    synth = rendering.Synth("sf_GMbank", "fluidsynth", SF2, "csound-soundfont", "gmbank")
    items = [rendering.Item("a4", "piano", [(0.0, 1.0, 69, 100)]),
             rendering.Item("missing", "x", [(0.0, 1.0, 60, 100)], bank=77, program=3),
             rendering.Item("e5", "piano", [(0.0, 1.0, 76, 100)])]
    a4, missing, e5 = rendering.render_items(synth, items, tmp_path, SR)
    assert missing is None and a4.dtype == np.float32
    for y, hz in ((a4, 440.0), (e5, 659.3)):
        assert abs(len(y) - int(1.55 * SR)) <= 1  # 50 ms before the note, 1 s note, 0.5 s release
        spectrum = np.abs(np.fft.rfft(y[int(0.1 * SR) : int(0.9 * SR)]))
        assert np.argmax(spectrum) * SR / int(0.8 * SR) == pytest.approx(hz, rel=0.01)
        assert np.max(np.abs(y[: int(0.04 * SR)])) < 1e-3 < np.max(np.abs(y))  # silent until the note, 50 ms in


# ---------------------------------------------------------------------------------------------
# SoundFont presets
# ---------------------------------------------------------------------------------------------


def test_riff_chunks_reads_padded_and_unpadded_odd_chunks():
    def chunk(cid: bytes, body: bytes, pad: bool) -> bytes:
        return cid + struct.pack("<I", len(body)) + body + (b"\0" if pad and len(body) % 2 else b"")

    for pad in (True, False):
        data = chunk(b"abcd", b"xyz", pad) + chunk(b"efgh", b"12", pad) + chunk(b"ijkl", b"q", pad)
        assert [(c, data[o : o + s]) for c, o, s in rendering._riff_chunks(data, 0, len(data))] == [
            (b"abcd", b"xyz"), (b"efgh", b"12"), (b"ijkl", b"q")]


def _fluidsynth_listing(path: Path) -> dict[tuple[int, int], str]:
    """``(bank, program) -> name`` as the fluidsynth shell lists a SoundFont's presets."""
    proc = subprocess.run(
        ["fluidsynth", "-a", "file", "-o", "audio.file.name=/dev/null", "-o", "midi.driver=oss",
         "-o", "synth.dynamic-sample-loading=1", str(path)],
        input="inst 1\nquit\n", capture_output=True, text=True, timeout=300,
    )
    return {(int(b), int(p)): name.strip() for b, p, name in re.findall(r"^(\d{3})-(\d{3}) (.*)$", proc.stdout, flags=re.M)}


@pytest.mark.parametrize("path", [SF2, SF3], ids=["sf2", "sf3"])
def test_soundfont_presets_agree_with_fluidsynth(path):  # both soundfonts: `make test` installs them (TEST_PACKAGES)
    presets = rendering.soundfont_presets(path)
    listed = _fluidsynth_listing(path)
    assert len(listed) > 100
    assert {k: n.strip() for k, (n, _) in presets.items()} == listed
    assert all(samples for _, samples in presets.values())  # every preset plays some sample


def test_sf3_sample_hashes_are_of_the_ogg_streams():
    """In an .sf3 a sample's start and end are byte offsets of its Ogg Vorbis stream."""
    data = SF3.read_bytes()
    ck = {c2: (o2, s2) for c, o, s in rendering._riff_chunks(data, 12, len(data)) if c == b"LIST"
          for c2, o2, s2 in rendering._riff_chunks(data, o + 4, o + s)}
    (smpl, _), (o, s) = ck[b"smpl"], ck[b"shdr"]
    starts = [struct.unpack_from("<I", data, o + 46 * k + 20)[0] for k in range(s // 46 - 1)]
    assert all(data[smpl + a : smpl + a + 4] == b"OggS" for a in starts)


# ---------------------------------------------------------------------------------------------
# Debian packages: checked, never installed; the Makefile lists every one
# ---------------------------------------------------------------------------------------------


def test_require_debian_package_raises_one_line_and_never_installs(tmp_path, monkeypatch):
    def no_subprocess(*args, **kwargs):
        raise AssertionError("require_debian_package ran a command")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    system.require_debian_package("some-package", tmp_path)  # present: quiet
    with pytest.raises(system.MissingDebianPackage) as err:
        system.require_debian_package("some-package", tmp_path / "absent.sf2")
    msg = str(err.value)
    assert "\n" not in msg and "some-package" in msg and "make data-packages" in msg and "absent.sf2" in msg


#: what no Python file may run: packages are installed by the Makefile only (the privilege
#: escalation command is spelt in two parts so that this file does not name it)
FORBIDDEN = ("apt-get", "su" "do ")


def test_makefile_data_packages_names_every_package_the_code_reads():
    text = "\n".join(p.read_text() for d in ("data", "benchmarks") for p in sorted((REPO / d).glob("*.py")))
    used = set(re.findall(r'require_debian_package\(\s*"([^"]+)"', text))
    for renderer, package in re.findall(r'Synth\(\s*"[^"]+",\s*"([^"]+)",\s*[^,]+,\s*"([^"]+)"', text):
        used |= {renderer, package}
    make = (REPO / "Makefile").read_text()
    listed = set(re.search(r"^DATA_PACKAGES := ((?:.*\\\n)*.*)$", make, flags=re.M).group(1).replace("\\\n", " ").split())
    assert len(used) >= 15 and used <= listed, used - listed
    assert re.search(r"^bench: .*data-packages", make, flags=re.M)
    for root in ("data", "benchmarks", "tests", "search_engine", "indexer"):
        for p in (REPO / root).rglob("*.py"):
            if p.name != "test_rendering.py":
                assert not any(word in p.read_text() for word in FORBIDDEN), p
