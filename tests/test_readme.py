"""The README's example flow runs as written, in the engine and in the workbench's loader."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def example_source() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    (source,) = [b for b in blocks if "class Fetch(Node)" in b]
    return source


def test_readme_example_runs(tmp_path, capsys):
    path = tmp_path / "crawl.py"
    path.write_text(example_source(), encoding="utf-8")
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out.strip() == "default ['hello', 'flyt', 'world']"


def test_readme_example_opens_in_the_loader(tmp_path):
    from flyt_tui.core.loading import load_module

    path = tmp_path / "crawl.py"
    path.write_text(example_source(), encoding="utf-8")
    loaded = load_module(path)
    assert [entry.name for entry in loaded.entries] == ["flow"]
    assert loaded.initial_store == {"url": "https://example.com"}
    names = {node.name for node in loaded.entries[0].flow.nodes()}
    assert names == {"fetch", "split", "lower"}  # named after their variables
