"""The ported documentation examples (``seed/flyt-docs.md``), one module per chapter.

``ported.py`` and ``ported_batch.py`` hold what the chapters share (imports, ``SECOND``,
fake clocks and services); each ``test_docs_<chapter>.py`` star-imports one of them.
"""
