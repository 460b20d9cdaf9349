"""Progress bars: tqdm in terminals and notebooks, off on request (``TQDM_DISABLE=1`` works too)."""

from tqdm.auto import tqdm


def progress(iterable=None, enabled: bool = True, **kwargs):
    if not enabled:
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)
