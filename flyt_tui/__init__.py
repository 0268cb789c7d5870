"""flyt_tui: the Textual workbench that runs, steps through and inspects Flyt flows.

Start it with ``flyt-tui FILE.py`` (or ``python -m flyt_tui FILE.py``); ``--headless`` runs a
flow without the UI. Importing this package does not import Textual.
"""

from flyt_engine import __version__

__all__ = ["__version__"]
