"""Exports of one recorded session (edge layer): TCX, FIT and CSV files for Strava, Garmin Connect,
intervals.icu or a spreadsheet. Pure functions from a `RecordedSession` to bytes; the CLI writes them."""

from retro_ftms.export.model import FORMATS, ExportFormat, RecordedSession

__all__ = ["FORMATS", "ExportFormat", "RecordedSession", "export"]


def export(session: RecordedSession, fmt: ExportFormat) -> bytes:
    """The session as a file of format `fmt` (ValueError without samples: there is nothing to import)."""
    if not session.samples:
        raise ValueError(f"session {session.past.session_id} has no samples to export")
    if fmt == "tcx":
        from retro_ftms.export.tcx import to_tcx  # noqa: PLC0415

        return to_tcx(session)
    if fmt == "fit":
        from retro_ftms.export.fit import to_fit  # noqa: PLC0415  (fit-tool takes a while to import)

        return to_fit(session)
    from retro_ftms.export.csv_rows import to_csv  # noqa: PLC0415

    return to_csv(session)
