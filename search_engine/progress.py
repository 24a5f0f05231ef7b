"""Progress: the library reports it, the CLI draws it.

Long calls of the library (:meth:`indexer.Indexer.add`, :func:`~search_engine.embedding.embed_files`,
:meth:`~search_engine.audio2vec.Encoder.encode`) take ``on_progress``, a callable
``on_progress(done, total, item)`` (items finished so far, items in all, the one being worked on);
they never print or draw. :func:`progress_bar` is the CLI's one bar (rich, on stderr) fed by it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

#: ``on_progress(done, total, item)``
OnProgress = Callable[[int, int, str], None]


@contextmanager
def progress_bar(show: bool | None, description: str) -> Iterator[OnProgress]:
    """A rich bar on stderr, as an ``on_progress`` callback; ``show=None`` shows it only when
    stderr is a terminal. The bar's text is the name of the item in progress (its end, when long)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    disable = (not console.is_terminal) if show is None else not show
    with Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int, item: str) -> None:
            bar.update(task, completed=done, total=total, description=_short(item) if item else description)

        yield update


def _short(item: str, width: int = 40) -> str:
    """The file name of ``item`` on one line, its end when longer than ``width``."""
    from .errors import one_line

    name = one_line(item.rsplit("/", 1)[-1])
    return name if len(name) <= width else "…" + name[-(width - 1) :]
