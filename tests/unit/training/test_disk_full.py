"""A full disk is reported as a full disk (exit 5), not as an unreachable registry."""

from __future__ import annotations

import errno

from kubellm.registry import DiskFull
from kubellm.registry.client import _mapped_errors
from kubellm.training.cli import EXIT_CODES, error_kind, unreachable_message


def _download_that_fills_the_disk() -> BaseException:
    try:
        with _mapped_errors("download models:/base/1"):
            raise OSError(errno.ENOSPC, "No space left on device")
    except Exception as exc:
        return exc
    raise AssertionError("no error")


def test_a_download_that_fills_the_disk_is_a_disk_full_error() -> None:
    exc = _download_that_fills_the_disk()
    assert isinstance(exc, DiskFull)
    assert error_kind(exc) == "disk_full" and EXIT_CODES["disk_full"] == 5


def test_a_checkpoint_that_fills_the_disk_is_a_disk_full_error() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/ckpt/step-40")
        except OSError as inner:
            raise RuntimeError("saving the checkpoint failed") from inner
    except RuntimeError as exc:
        assert error_kind(exc) == "disk_full"


def test_unreachable_message_hides_userinfo() -> None:
    text = unreachable_message("http://u:pw@m:5000", "[Errno 111] Connection refused")
    assert text == "MLflow registry at http://***@m:5000 cannot be reached (Connection refused)"
