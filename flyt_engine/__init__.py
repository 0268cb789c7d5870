"""Flyt for Python: a zero-dependency workflow engine of nodes, actions and flows.

The public API of ``shared/API.md``; see the README for a tour.
"""

from .aio import arun
from .batch import BatchConfig, BatchFlow, BatchNode, FlowInputs
from .context import Context
from .errors import BatchError, BindError, Cancelled, DeadlineExceeded, FlytError, NodeError, WorkerLost
from .flow import Flow
from .node import DEFAULT_ACTION, FallbackNode, Node, RetryableNode, run
from .pool import WorkerPool, to_slice
from .start_at import StartAt
from .store import SharedStore

__version__ = "0.2.0"

__all__ = [
    "DEFAULT_ACTION",
    "BatchConfig",
    "BatchError",
    "BatchFlow",
    "BatchNode",
    "BindError",
    "Cancelled",
    "Context",
    "DeadlineExceeded",
    "FallbackNode",
    "Flow",
    "FlowInputs",
    "FlytError",
    "Node",
    "NodeError",
    "RetryableNode",
    "SharedStore",
    "StartAt",
    "WorkerLost",
    "WorkerPool",
    "arun",
    "run",
    "to_slice",
]
