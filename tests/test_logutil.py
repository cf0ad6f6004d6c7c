import logging

from edge.core.logutil import RateLimitFilter


def _record(msg, *args):
    return logging.LogRecord("edge.mic", logging.WARNING, __file__, 1, msg, args, None)


def test_flapping_message_is_rate_limited_and_suppression_is_reported():
    f = RateLimitFilter(period_s=0.2, burst=3)
    passed = [f.filter(_record("microphone lost (%s)", i)) for i in range(100)]
    assert sum(passed) == 3
    import time

    time.sleep(0.25)
    rec = _record("microphone lost (%s)", 101)
    assert f.filter(rec)
    assert "97 similar messages suppressed" in rec.getMessage()


def test_different_messages_are_limited_independently():
    f = RateLimitFilter(period_s=60, burst=1)
    assert f.filter(_record("a"))
    assert f.filter(_record("b"))
    assert not f.filter(_record("a"))


def test_key_table_stays_bounded():
    f = RateLimitFilter(period_s=60, burst=1, max_keys=10)
    for i in range(1000):
        f.filter(_record(f"unique message {i}"))
    assert len(f._windows) <= 10
