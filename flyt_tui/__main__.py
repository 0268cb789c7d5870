"""``python -m flyt_tui``: the same command as ``flyt-tui``."""

from flyt_tui.cli import run

if __name__ == "__main__":
    run("flyt-tui")
