import math

import torch

from mechgrok.replay import SurpriseMemory, select_failures, select_uniform


def _memory(surprise, failed):
    m = SurpriseMemory(len(surprise), 7)
    m.update(torch.arange(len(surprise)), torch.tensor(surprise), torch.tensor(failed), step=1)
    return m


def test_unseen_examples_count_as_failures_at_uniform_loss():
    m = SurpriseMemory(4, 7)
    assert m.failed.all() and torch.allclose(m.surprise, torch.full((4,), math.log(7)))


def test_topk_takes_failures_first_then_most_surprising():
    m = _memory([0.1, 5.0, 0.3, 0.2, 4.0, 0.9], [True, False, True, False, False, True])
    assert select_failures(m, 2).tolist() == [5, 2]
    # three failures, then the two most surprising correct ones
    assert select_failures(m, 5).tolist() == [5, 2, 0, 1, 4]


def test_topk_breaks_ties_by_position():
    m = _memory([1.0, 1.0, 1.0], [True, True, True])
    assert select_failures(m, 2).tolist() == [0, 1]


def test_sampled_stays_among_failures_and_follows_surprise():
    surprise = [1.0] * 50 + [9.0] * 50 + [100.0] * 20
    failed = [True] * 100 + [False] * 20
    m = _memory(surprise, failed)
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(120)
    for _ in range(300):
        chosen = select_failures(m, 10, "sampled", alpha=1.0, generator=g)
        assert len(set(chosen.tolist())) == 10 and chosen.max() < 100
        counts[chosen] += 1
    # weight 9 vs 1: about 90% of draws from the high-surprise half (without replacement a bit less)
    share = counts[50:100].sum() / counts.sum()
    assert 0.8 < share < 0.95
    flat = torch.zeros(120)
    for _ in range(300):
        flat[select_failures(m, 10, "sampled", alpha=0.0, generator=g)] += 1
    assert 0.4 < flat[50:100].sum() / flat.sum() < 0.6  # alpha = 0 is uniform over failures


def test_uniform_control_is_distinct_and_seeded():
    a = select_uniform(50, 20, torch.Generator().manual_seed(3))
    b = select_uniform(50, 20, torch.Generator().manual_seed(3))
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 20 and a.max() < 50
