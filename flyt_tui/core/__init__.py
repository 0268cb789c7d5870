"""Everything the workbench does that is not drawing: loading and discovery, the run
session, the run history, safe formatting, file watching.

Nothing here imports textual (``tests/engine/test_import_hygiene.py`` enforces it), so the
headless mode, the tests and any other front end use the same core as the app.
"""
