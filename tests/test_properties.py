"""Property-based tests: whatever waveform, rate, length and channel count comes in, decoding,
features, queries and indexing either raise the documented error or give finite numbers.

Reproducible: derandomize=True draws the same examples on every run (no example database).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from search_engine.audio import load
from search_engine.errors import Audio2VecError, DecodeError
from synth import tune

#: the same examples on every run (CI), no database; fixtures are reused across examples on purpose
SETTINGS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: samples x channels of one generated file at most (keeps every example small)
MAX_VALUES = 1_500_000
KINDS = ("noise", "tone", "tune", "silence", "dc", "spikes")
AMPLITUDES = (0.0, 1e-7, 1e-4, 0.01, 0.5, 1.0, 1.5, 1e3, 1e6, 1e20, 3e38)


@dataclass(frozen=True)
class Signal:
    kind: str
    sr: int
    n: int
    channels: int
    amplitude: float
    inject: str  # "" | "nan" | "inf" | "-inf"
    seed: int

    def samples(self) -> np.ndarray:
        """float32 [n, channels] (float64 math first, so that amplitudes near float32's limit stay finite)."""
        rng = np.random.default_rng(self.seed)
        n, t = self.n, np.arange(self.n) / self.sr
        if self.kind == "noise":
            y = rng.standard_normal(n) / 4
        elif self.kind == "tone":
            y = np.sin(2 * np.pi * rng.uniform(50, min(3000, self.sr / 2.2)) * t)  # kept at 8 kHz
        elif self.kind == "tune":
            with np.errstate(invalid="ignore"):  # a tune of a few samples may be all zeros: 0/0
                y = np.nan_to_num(tune(self.seed, (n + 1) / self.sr, sr=self.sr).astype(np.float64)[:n])
            y = np.pad(y, (0, n - len(y)))
        elif self.kind == "silence":
            y = np.zeros(n)
        elif self.kind == "dc":
            y = np.ones(n)
        else:  # a few random spikes on silence
            y = np.zeros(n)
            y[rng.integers(0, n, size=max(1, n // 5000))] = rng.choice([-1.0, 1.0])
        y = np.clip(y, -1, 1) * self.amplitude
        gains = rng.uniform(0.2, 1.0, size=self.channels)
        out = (y[:, None] * gains[None, :]).astype(np.float32)
        if self.inject:
            idx = rng.integers(0, n, size=min(n, 3))
            out[idx, rng.integers(0, self.channels)] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[self.inject]
        return out

    @property
    def has_sound(self) -> bool:
        """Certainly not silent or constant after decoding (varies by far more than the threshold)."""
        return self.kind in ("noise", "tone", "tune") and 1e-3 <= self.amplitude <= 1e6 and self.n >= 256


@st.composite
def signals(draw, *, max_seconds: float = 20.0, inject: bool = True, mostly_sound: bool = False) -> Signal:
    """Random test signals; ``mostly_sound`` draws usable audio about three times in four (for
    queries and indexing, where refusals teach little), else every kind equally."""
    sr = draw(st.one_of(st.sampled_from([8000, 16000, 22050, 44100, 48000, 96000, 192000]), st.integers(4000, 192000)))
    channels = draw(st.sampled_from([1, 1, 2, 6]) | st.integers(1, 8))
    tiny = st.integers(1, 600).map(lambda n: n / sr)  # a few samples: under one FFT frame
    longer = st.floats(1.2, max(1.2, max_seconds))
    if mostly_sound:
        seconds = st.one_of(longer, longer, longer, tiny)
        kind = st.sampled_from(["noise", "tone", "tune"] * 3 + ["silence", "dc", "spikes"])
        amplitude = st.sampled_from([0.01, 0.5, 1.0, 1.5, 1e3] * 3 + list(AMPLITUDES))
        injected = st.sampled_from([""] * 7 + ["nan"])
    else:
        seconds = st.one_of(tiny, st.floats(0.3, 1.2), longer)  # 0.3-1.2 s: around one model window
        kind = st.sampled_from(KINDS)
        amplitude = st.sampled_from(AMPLITUDES)
        injected = st.sampled_from(["", "", "", "nan", "inf", "-inf"])
    n = max(1, min(int(draw(seconds) * sr), MAX_VALUES // channels))
    return Signal(
        kind=draw(kind),
        sr=sr,
        n=n,
        channels=channels,
        amplitude=draw(amplitude),
        inject=draw(injected) if inject else "",
        seed=draw(st.integers(0, 2**16)),
    )


def _write(sig: Signal, path: Path, subtype: str) -> Path:
    x = sig.samples()
    if subtype == "PCM_16":  # what a PCM writer does with out-of-range and non-finite input
        x = np.clip(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    sf.write(path, x, sig.sr, subtype=subtype)
    return path


def _assert_decode_error(exc: DecodeError, source: str) -> None:
    message = str(exc)
    assert "\n" not in message and message.startswith(f"{source}: ") and exc.reason, message


# --- decoding -------------------------------------------------------------------------------------


@settings(max_examples=100, **SETTINGS)
@given(sig=signals(), subtype=st.sampled_from(["PCM_16", "FLOAT"]), target=st.sampled_from([16000, 16000, 8000, 44100]))
def test_load_gives_finite_mono_float32_or_a_decode_error(tmp_path, sig: Signal, subtype: str, target: int):
    path = _write(sig, tmp_path / f"x_{subtype}.wav", subtype)
    stored = sf.read(path, dtype="float64", always_2d=True)[0].mean(axis=1)  # what the file holds
    must_fail = len(stored) < 2 or not np.isfinite(stored).all() or np.ptp(stored) == 0
    try:
        y, sr = load(path, sr=target)
    except DecodeError as exc:
        event(f"refused: {exc.reason.split(':')[0].split('(')[0].strip()}")
        _assert_decode_error(exc, str(path))
        assert not (sig.has_sound and np.isfinite(stored).all()), f"sound refused: {exc}"
        return
    event("decoded")
    assert not must_fail, "accepted a file that is too short, non-finite or constant"
    assert sr == target and y.dtype == np.float32 and y.ndim == 1 and len(y) >= 2
    assert np.isfinite(y).all()
    assert abs(len(y) - sig.n * target / sig.sr) <= 2 + 0.001 * len(y)
    # resampling overshoots full scale a little; float files beyond MAX_PEAK come back at peak 1
    assert np.abs(y).max() <= 4.0 * min(max(1.0, np.abs(stored).max()), 1e4)


@settings(max_examples=60, **SETTINGS)
@given(sig=signals(max_seconds=5.0, inject=True))
def test_in_memory_waveforms_give_finite_mono_or_a_decode_error(sig: Signal):
    from search_engine.audio import to_mono

    x = sig.samples()
    x = x[:, 0] if sig.channels == 1 else x
    try:
        # float64 input beyond float32's range (3e38 * 1e260) must be scaled, not overflow
        y = to_mono(x.astype(np.float64) * (1e260 if sig.amplitude == 3e38 else 1.0), sig.sr, sr=16000)
    except DecodeError as exc:
        _assert_decode_error(exc, "<waveform>")
        assert not sig.has_sound or sig.inject, exc
        return
    assert not sig.inject and y.dtype == np.float32 and y.ndim == 1 and np.isfinite(y).all()


# --- features and the encoder ---------------------------------------------------------------------


@settings(max_examples=40, **SETTINGS)
@given(sig=signals(max_seconds=8.0, inject=False), scale=st.sampled_from([1.0, 1e-30, 1e15, 1e30]))
def test_encoder_gives_finite_unit_vectors_for_any_finite_waveform(encoder, sig: Signal, scale: float):
    """Straight into the encoder, without load's checks: silence, DC, spikes, 1e38 peaks."""
    y = sig.samples()[:, 0].astype(np.float64) * scale
    y = np.clip(y, -3e38, 3e38).astype(np.float32)  # the largest finite float32 values
    try:
        e = encoder.embed(y, hop_frames=32)
    except DecodeError as exc:
        assert "too short" in exc.reason and len(y) < encoder.features.window_s * 16000, exc
        return
    assert e.vectors.shape == (len(e.starts_s), encoder.dim) and len(e.starts_s) >= 1
    assert np.isfinite(e.vectors).all() and np.isfinite(e.starts_s).all()
    assert np.allclose(np.linalg.norm(e.vectors, axis=1), 1.0, atol=1e-3)


@settings(max_examples=15, **SETTINGS)
@given(n=st.integers(9000, 40000), kind=st.sampled_from(["nan", "inf", "-inf"]), at=st.integers(0, 2**16))
def test_encoder_refuses_non_finite_waveforms(encoder, n: int, kind: str, at: int):
    y = tune(at, n / 16000)[:n].copy()
    y[at % (len(y) - 512)] = float(kind)  # inside the analysed frames (a tail shorter than a hop is not read)
    with pytest.raises(DecodeError, match="NaN or infinite"):
        encoder.embed(y, hop_frames=32)


# --- queries --------------------------------------------------------------------------------------


@settings(max_examples=40, **SETTINGS)
@given(sig=signals(max_seconds=6.0, mostly_sound=True), mode=st.sampled_from(["match", "similar"]))
def test_query_answers_with_finite_distances_or_the_documented_error(engine, sig: Signal, mode: str):
    x = sig.samples()
    try:
        matches = engine.query((x if sig.channels > 1 else x[:, 0], sig.sr), k=3, mode=mode)
    except Audio2VecError as exc:
        event(f"query refused: {getattr(exc, 'reason', str(exc))[:40]}")
        assert re.match(r"<waveform>: \S", str(exc)) and "\n" not in str(exc), exc
        assert not sig.has_sound or sig.inject or sig.n / sig.sr < engine.encoder.features.window_s, exc
        return
    event("query answered")
    assert not sig.inject
    assert 1 <= len(matches) <= 3 and [m.rank for m in matches] == list(range(1, len(matches) + 1))
    assert np.isfinite([m.distance for m in matches]).all() and all(m.distance >= 0 for m in matches)
    assert [m.distance for m in matches] == sorted(m.distance for m in matches)


# --- indexing -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch_index(tmp_path_factory):
    from search_engine import SearchEngine

    with SearchEngine.create(tmp_path_factory.mktemp("properties_index")) as engine:
        yield engine


@settings(max_examples=20, **SETTINGS)
@given(
    sigs=st.lists(signals(max_seconds=6.0, mostly_sound=True), min_size=1, max_size=4),
    subtypes=st.lists(st.sampled_from(["PCM_16", "FLOAT"]), min_size=4, max_size=4),
)
def test_indexing_random_files_stores_only_finite_vectors(scratch_index, tmp_path_factory, sigs, subtypes):
    from indexer import Indexer

    engine = scratch_index
    folder = tmp_path_factory.mktemp("random_files")
    paths = [_write(sig, folder / f"f{i}.wav", subtype) for i, (sig, subtype) in enumerate(zip(sigs, subtypes))]
    before = engine.stats()["files"]
    errors = []
    report = Indexer(engine, on_error=lambda p, m: errors.append((p, m))).add([folder])
    event(f"files indexed: {report.added + report.copied + report.moved}, failed: {len(report.failed)}")
    # moved: the same bytes as a file of an earlier example, which has been deleted since
    assert report.added + report.copied + report.moved + len(report.failed) == len(paths)
    assert [p for p, _ in errors] == [p for p, _ in report.failed] and all("\n" not in m for _, m in errors)
    assert engine.stats()["files"] == before + report.added + report.copied
    for kind in (engine.segments, engine.wholes):
        ids = np.sort(kind.ids())
        assert np.isfinite(kind.reconstruct(ids)).all()
    assert np.array_equal(np.sort(engine.segments.ids()), np.sort(engine.catalog.segment_ids()))
    for f in engine.catalog.files_under(str(folder.resolve())):
        assert f.n_segments >= 1 and np.isfinite(f.duration_s) and f.duration_s > 0
    for p in paths:
        os.unlink(p)
