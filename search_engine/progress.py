"""The one progress bar of audio2vec (rich, on stderr)."""

from __future__ import annotations


def progress_bar(show: bool | None):
    """A rich ``Progress`` on stderr; ``show=None`` shows it only when stderr is a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    disable = (not console.is_terminal) if show is None else not show
    return Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
        transient=False,
    )
