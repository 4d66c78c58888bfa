import numpy as np

from mechgrok.config import make_config
from mechgrok.data import encode, split_indices


def _check_partition(cfg):
    train, test = split_indices(cfg)
    assert len(train) == cfg.n_train and len(test) == cfg.n_test
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(cfg.p ** 2))
    return train, test


def test_operand_split_is_first_operand_below_train_end():
    train, test = _check_partition(make_config("hard"))
    a = train // 97
    assert a.max() == 15 and set(np.unique(a)) == set(range(16))
    assert (test // 97).min() == 16
    assert len(np.unique(train % 97)) == 97  # every second operand is seen


def test_both_operands_split():
    train, _ = _check_partition(make_config("hard", split="both-operands"))
    assert (train // 97).max() == 15 and (train % 97).max() == 15


def test_random_split_is_seeded():
    a, _ = _check_partition(make_config("hard", seed=1, split="random", train_fraction=0.3))
    b, _ = _check_partition(make_config("hard", seed=1, split="random", train_fraction=0.3))
    c, _ = _check_partition(make_config("hard", seed=2, split="random", train_fraction=0.3))
    d, _ = _check_partition(make_config("hard", seed=2, split="random", train_fraction=0.3, split_seed=1))
    assert np.array_equal(a, b) and not np.array_equal(a, c) and np.array_equal(a, d)


def test_encode_tokens_and_labels():
    tokens, labels = encode(np.array([0, 5 * 13 + 9, 12 * 13 + 12]), 13)
    assert tokens.tolist() == [[0, 0, 13], [5, 9, 13], [12, 12, 13]]
    assert labels.tolist() == [0, (5 + 9) % 13, (12 + 12) % 13]
