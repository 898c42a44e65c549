"""Historical bars from IB, paced, resumable, per contract (issue 15): plan what a range needs, download it
without a pacing violation, checkpoint every chunk, and report the sessions that lack bars."""

from ibot.history.checkpoint import Checkpoint
from ibot.history.classify import Failure, FailureClass, classify
from ibot.history.download import Downloader, DownloadOptions, DownloadProgress, DownloadStats
from ibot.history.pacing import IB_PACING, PacingRules, PacingScheduler, RequestKey
from ibot.history.plan import BarSpec, Chunk, ContractWindow, bar_spec, chunks, contract_windows, units
from ibot.history.source import BarRequest, BarsAnswer, ContractInfo, HistorySource

__all__ = [
    "IB_PACING",
    "BarRequest",
    "BarSpec",
    "BarsAnswer",
    "Checkpoint",
    "Chunk",
    "ContractInfo",
    "ContractWindow",
    "DownloadOptions",
    "DownloadProgress",
    "DownloadStats",
    "Downloader",
    "Failure",
    "FailureClass",
    "HistorySource",
    "PacingRules",
    "PacingScheduler",
    "RequestKey",
    "bar_spec",
    "chunks",
    "classify",
    "contract_windows",
    "units",
]
