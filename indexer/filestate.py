"""What the indexer reads about a file besides its audio: identity, content hash and tags."""

from __future__ import annotations

import hashlib
import os

_HASH_CHUNK = 1 << 20


def content_hash(path: str | os.PathLike) -> str:
    """BLAKE2b-256 hex digest of the file's bytes (streamed)."""
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_tags(path: str | os.PathLike) -> dict[str, str]:
    """Title, artist, album, genre, track (number) and date tags via mutagen (its "easy" keys:
    ID3, Vorbis comments, MP4 and others alike); ``{}`` when the file has none or mutagen fails."""
    try:
        import mutagen

        f = mutagen.File(path, easy=True)
    except Exception:
        return {}
    if f is None or not getattr(f, "tags", None):
        return {}
    out = {}
    for key, name in (("title", "title"), ("artist", "artist"), ("album", "album"), ("genre", "genre"),
                      ("tracknumber", "track"), ("date", "date")):
        try:
            value = f.tags.get(key)
        except Exception:
            value = None
        if value:
            out[name] = str(value[0] if isinstance(value, list) else value)
    return out


def channels_and_rate(path: str | os.PathLike) -> tuple[int, int]:
    """Channel count and native sample rate (Hz) of a file, ``(0, 0)`` when unknown."""
    try:
        import soundfile as sf

        info = sf.info(str(path))
        return info.channels, info.samplerate
    except Exception:
        pass
    try:
        import av

        with av.open(str(path)) as c:
            s = c.streams.audio[0]
            return s.codec_context.channels, s.codec_context.sample_rate
    except Exception:
        return 0, 0
