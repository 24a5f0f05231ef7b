"""Long queries: a clip that plays several indexed recordings one after another gets one result per
recording, with the span of the clip that lies in it; stretches of unknown audio are not claimed."""

from __future__ import annotations

import numpy as np
import pytest

from synth import SR, add_noise, tune


def _mix(library: dict[str, np.ndarray], plan: list) -> tuple[np.ndarray, list[tuple[str | None, float, float, float]]]:
    """Concatenate pieces with 1 s crossfades. ``plan``: ``(path or None, start_s, seconds, seed)``
    (None: unknown audio made from ``seed``). Returns the waveform and per piece ``(path,
    start in the mix, end in the mix, start in the recording)``."""
    fade = SR
    out = np.zeros(0, np.float32)
    truth = []
    for path, start, seconds, seed in plan:
        src = library[path] if path else tune(seed, start + seconds)
        piece = src[int(start * SR) : int((start + seconds) * SR)].copy()
        at = max(0, len(out) - fade) if len(out) else 0
        if len(out):
            ramp = np.linspace(0, 1, fade, dtype=np.float32)
            piece[:fade] *= ramp
            out[-fade:] *= 1 - ramp
            out = np.concatenate([out[:-fade], out[-fade:] + piece[:fade], piece[fade:]])
        else:
            out = piece
        truth.append((path, at / SR, at / SR + seconds, start))
    return out, truth


@pytest.fixture(scope="module")
def mix(library):
    paths = sorted(library)
    plan = [(paths[0], 3.0, 14.0, 0), (None, 0.0, 12.0, 901), (paths[3], 6.0, 15.0, 0), (paths[5], 1.0, 13.0, 0), (None, 2.0, 10.0, 902)]
    y, truth = _mix(library, plan)
    return add_noise(y, snr_db=25, seed=1), truth


def test_long_clip_returns_each_recording_with_its_span(engine, mix):
    y, truth = mix
    res = engine.query_batch([(y, SR)], k=5)[0]
    claimed = [m for m in res.matches if m.matched]
    expected = [t for t in truth if t[0]]
    assert res.matched is True
    assert [m.path for m in claimed] == [p for p, *_ in expected]
    for m, (_, start, end, offset) in zip(claimed, expected):
        assert abs(m.query_start_s - start) <= 2.5 and abs(m.query_end_s - end) <= 2.5, (m, start, end)
        assert abs(m.offset_s - offset) <= 1.5, (m, offset)
    line = res.as_dict()
    assert all({"query_start_s", "query_end_s", "offset_s", "matched"} <= set(r) for r in line["results"])


def test_unknown_stretches_are_not_claimed(engine, mix):
    y, truth = mix
    res = engine.query_batch([(y, SR)], k=5)[0]
    for _, start, end, _ in (t for t in truth if t[0] is None):
        for m in res.matches:
            if m.matched:  # a claimed span may reach into an unknown stretch by a crossfade, no further
                assert min(m.query_end_s, end) - max(m.query_start_s, start) <= 2.5, (m, start, end)


def test_long_clip_of_nothing_indexed_claims_nothing(engine):
    y = np.concatenate([tune(911, 20.0), tune(912, 20.0)])
    res = engine.query_batch([(y, SR)], k=3)[0]
    assert res.matched is False
    assert not any(m.matched for m in res.matches)


def test_short_clips_have_no_spans(engine, library):
    path, y = sorted(library.items())[1]
    res = engine.query_batch([(y[2 * SR : 12 * SR], SR)], k=3)[0]
    assert res.matches[0].path == path and res.matches[0].query_start_s is None
    assert all("query_start_s" not in r for r in res.as_dict()["results"])


def test_chain_chunks_needs_two_chunks_at_one_alignment():
    from search_engine.long_queries import ChunkAnswer, chain_chunks

    chunks = [
        ChunkAnswer(0, 250, 3, 100, True), ChunkAnswer(60, 310, 3, 101, True), ChunkAnswer(120, 370, 3, 99, True),
        ChunkAnswer(180, 430, 3, 700, True),  # another alignment, alone
        ChunkAnswer(240, 490, 5, 40, False), ChunkAnswer(300, 550, 7, 10, True),  # unclaimed; alone
    ]
    spans = chain_chunks(chunks, tolerance_hops=31)
    assert [(s.lo, s.hi, s.row, s.origin_hops) for s in spans] == [(0, 370, 3, 100)]


def test_refine_span_stops_where_the_clip_stops_lining_up():
    from search_engine.long_queries import refine_span

    w = np.arange(0, 1600, 16)  # one aligned window per segment hop
    d = np.where((w >= 320) & (w < 960), 0.4, 1.35)
    d[(w > 500) & (w < 560)] = 1.2  # a short noisy stretch inside does not split it
    assert refine_span(w, d, 400, 800, reach=1600) == (320, 960)
    assert refine_span(w, np.full(len(w), 1.4), 400, 800, reach=1600) is None


def test_cli_prints_the_spans(built_index, mix, tmp_path):
    import json

    import soundfile as sf
    from typer.testing import CliRunner

    from search_engine.cli import app

    y, truth = mix
    path = tmp_path / "mix.wav"
    sf.write(path, y, SR)
    out = CliRunner().invoke(app, ["query", str(path), "--index", str(built_index), "--json"])
    assert out.exit_code == 0, out.output
    line = json.loads(out.stdout.strip())
    claimed = [r for r in line["results"] if r["matched"]]
    assert len(claimed) == 3 and all(r["query_end_s"] > r["query_start_s"] for r in claimed)
    table = CliRunner().invoke(app, ["query", str(path), "--index", str(built_index)])
    assert table.exit_code == 0 and "in clip" in table.stdout
