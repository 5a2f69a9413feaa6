"""The sliding one-minute weight budget, on a hand-driven clock."""

from server.ratelimit import WeightLimiter


def test_budget_slides_over_one_minute() -> None:
    now = [1000.0]
    lim = WeightLimiter(50, clock=lambda: now[0])
    assert lim.take("k", 20) is None and lim.take("k", 20) is None  # 40 spent at t=1000
    assert lim.take("k", 20) == 60  # 60 > 50: wait until the first 20 leaves at t=1060
    assert lim.take("other", 50) is None  # budgets are per key
    now[0] = 1030.0
    assert lim.take("k", 10) is None  # 50 spent
    assert lim.take("k", 1) == 30
    now[0] = 1060.0  # the two spends of t=1000 have left the window
    assert lim.take("k", 40) is None
    assert lim.take("k", 1) == 30  # 10 (t=1030) + 40 (t=1060) = 50 spent


def test_zero_budget_is_off_and_oversized_requests_wait_a_minute() -> None:
    assert WeightLimiter(0).take("k", 10**6) is None
    assert WeightLimiter(5).take("k", 6) == 60
