"""How `make bench` measures the largest delivery's memory (bench/largest_delivery.py): the
peak is the work's after the reset, not an earlier one, and what the work touches is counted."""

from bench.largest_delivery import _reset_peak_rss, _status_mb

MB = 1024 * 1024


def test_the_peak_counts_the_work_after_the_reset_and_forgets_an_earlier_one() -> None:
    # Given a high-water mark left by earlier work (like imports), 160 MB above today's RSS
    earlier = bytearray(b"\x01") * (160 * MB)
    del earlier

    # When the peak is reset
    _reset_peak_rss()
    baseline = _status_mb("VmRSS")

    # Then the earlier peak is gone
    assert _status_mb("VmHWM") < baseline + 16

    # and work touching 64 MB raises it by at least that much
    work = bytearray(b"\x01") * (64 * MB)
    del work
    assert _status_mb("VmHWM") - baseline >= 60
