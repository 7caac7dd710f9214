"""The history of a person's sessions (edge layer): the SQLite store and the recorder that fills it."""

from retro_ftms.history.store import HistoryStore, Sample, SessionStart, default_path

__all__ = ["HistoryStore", "Sample", "SessionStart", "default_path"]
