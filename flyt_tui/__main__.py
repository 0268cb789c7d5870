"""``python -m flyt_tui``: the same command as ``flyt-tui``."""

from flyt_tui.cli import main

if __name__ == "__main__":
    main(prog_name="flyt-tui")
