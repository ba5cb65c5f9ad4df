"""The circuit breaker: open after a failure, probed after its back-off, closed on success."""

from __future__ import annotations

from processors.breaker import CircuitBreaker


def test_backs_off_doubling_and_recovers():
    now = [0.0]
    breaker = CircuitBreaker("claude", backoff_s=5, max_backoff_s=12, clock=lambda: now[0])
    assert breaker.state == "closed" and breaker.available()
    breaker.record_failure("529 overloaded")
    assert breaker.state == "open" and not breaker.available()
    now[0] = 5.0
    assert breaker.state == "half_open" and breaker.available()  # the next turn probes it
    breaker.record_failure("timeout")
    assert breaker.retry_at == 15.0  # 10 s: doubled
    breaker.record_failure("timeout")
    assert breaker.retry_at == 17.0  # capped at 12 s
    now[0] = 17.0
    breaker.record_success()
    assert breaker.state == "closed" and breaker.trips == 3 and breaker.last_reason == ""


def test_the_board_gives_every_call_the_same_breaker_for_a_provider():
    from processors.breaker import BreakerBoard

    board = BreakerBoard()
    a = board.breaker("stt deepgram default endpoint", backoff_s=5, max_backoff_s=60)
    b = board.breaker("stt deepgram default endpoint", backoff_s=2, max_backoff_s=30)  # bot.yaml edited
    assert a is b and (a.backoff_s, a.max_backoff_s) == (2, 30)
    assert board.breaker("stt deepgram ws://127.0.0.1:9", backoff_s=5, max_backoff_s=60) is not a
