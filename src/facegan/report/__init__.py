"""The training report: plots of metrics.jsonl, sample GIFs, latent walks and one HTML page (RUN/report/)."""

from facegan.report.build import build_report, report_hook, try_build_report

__all__ = ["build_report", "report_hook", "try_build_report"]
