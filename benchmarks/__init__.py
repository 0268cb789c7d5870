"""Benchmarks of the engine and the workbench against their baselines (``python -m benchmarks``).

One module per row group (``engine_rows``, ``batch_rows``, ``dask_rows``, ``tui_rows``,
``memory_rows``), each with ``ROWS`` and ``run_rows(wanted, quick) -> list[Row]``; the
shared machinery (bars, interleaving, medians, table, JSON) lives in ``harness``.
"""
