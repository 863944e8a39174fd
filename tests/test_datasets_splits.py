"""Splits, hosts, duplicates and the cap per capture, on plain arrays."""

from __future__ import annotations

import numpy as np

from botunet.datasets.balance import cap_per_capture, class_weights, family_counts, label_counts
from botunet.datasets.splits import (
    find_duplicates,
    group_ids,
    host_of,
    split_groups,
    split_random,
    vector_ids,
)

RATIOS = (0.6, 0.2, 0.2)


def test_split_random_is_stratified_three_one_one():
    labels = np.array([0] * 500 + [1] * 100)
    codes = split_random(labels, RATIOS, seed=3)
    for label, n in ((0, 500), (1, 100)):
        counts = np.bincount(codes[labels == label], minlength=3)
        assert counts.tolist() == [n * 3 // 5, n // 5, n // 5]


def test_split_random_depends_on_seed_only():
    labels = np.random.default_rng(0).integers(0, 2, 1000)
    first = split_random(labels, RATIOS, seed=5)
    assert np.array_equal(first, split_random(labels, RATIOS, seed=5))
    assert not np.array_equal(first, split_random(labels, RATIOS, seed=6))


def test_split_random_all_test():
    codes = split_random(np.array([0, 1, 1, 0, 1]), (0.0, 0.0, 1.0), seed=0)
    assert codes.tolist() == [2] * 5


def test_split_groups_keeps_groups_whole_and_every_split_gets_both_labels():
    rng = np.random.default_rng(1)
    sizes = [900, 40, 30, 25, 20, 10, 5]  # one huge botnet capture, as Tinba is
    groups, labels = [], []
    for g, size in enumerate(sizes):
        groups += [g] * size
        labels += [1] * size
    for g, size in enumerate(rng.integers(20, 200, 12), start=len(sizes)):
        groups += [g] * int(size)
        labels += [0] * int(size)
    groups, labels = np.array(groups), np.array(labels)

    codes = split_groups(groups, labels, RATIOS, seed=0)

    for g in np.unique(groups):
        assert np.unique(codes[groups == g]).size == 1
    for label in (0, 1):
        assert set(codes[labels == label].tolist()) == {0, 1, 2}
    assert codes[groups == 0][0] == 0  # the largest group goes to train
    benign = np.bincount(codes[labels == 0], minlength=3) / np.sum(labels == 0)
    assert abs(benign[0] - 0.6) < 0.15 and benign[1] > 0.08 and benign[2] > 0.08
    assert np.array_equal(codes, split_groups(groups, labels, RATIOS, seed=0))


def test_split_groups_mixed_group_counts_under_its_majority_label():
    groups = np.array([0, 0, 0, 1, 2, 3])
    labels = np.array([1, 1, 0, 1, 1, 0])
    codes = split_groups(groups, labels, RATIOS, seed=0)
    assert codes[0] == codes[1] == codes[2] == 0  # largest botnet group
    assert sorted(codes[[3, 4]].tolist()) == [1, 2]


def test_host_of_prefers_infected_then_internal():
    infected = frozenset({"10.0.2.108"})
    assert host_of("8.8.8.8", "10.0.2.108", infected) == "10.0.2.108"
    assert host_of("192.168.1.5", "8.8.8.8") == "192.168.1.5"
    assert host_of("8.8.8.8", "fe80::1") == "fe80::1"
    assert host_of("8.8.8.8", "1.1.1.1") == "8.8.8.8"
    assert host_of("2001:DB8:0::1", "8.8.8.8") == "2001:db8::1"


def test_group_ids_number_keys_in_sorted_order():
    assert group_ids(["b", "a", "b", "c"]).tolist() == [1, 0, 1, 2]


def test_vector_ids_and_duplicates_across_splits():
    vectors = np.array([[1, 2], [3, 4], [1, 2], [1, 2], [3, 4], [5, 6]], dtype=np.uint8)
    labels = np.array([0, 1, 0, 1, 1, 0])
    codes = np.array([0, 0, 0, 2, 1, 1], dtype=np.int8)
    ids = vector_ids(vectors)
    assert ids[0] == ids[2] == ids[3] and ids[1] == ids[4] and len(set(ids.tolist())) == 3

    kept = find_duplicates(vectors, labels, codes, drop=False)
    assert kept.keep.all()
    assert (kept.unique_vectors, kept.repeated_samples, kept.cross_split) == (3, 3, 2)
    assert kept.conflicting_vectors == 1  # [1, 2] is benign and botnet

    dropped = find_duplicates(vectors, labels, codes, drop=True)
    # train keeps its two copies of [1, 2]; the test copy and the val [3, 4] go
    assert dropped.keep.tolist() == [True, True, True, False, False, True]
    assert dropped.removed == {"train": 0, "val": 1, "test": 1}
    assert dropped.to_dict()["removed_total"] == 2


def test_cap_per_capture_is_seeded_per_capture():
    captures = ["a"] * 10 + ["b"] * 3 + ["c"] * 6
    keep = cap_per_capture(captures, 4, seed=0)
    names = np.array(captures)
    assert [int(keep[names == n].sum()) for n in "abc"] == [4, 3, 4]
    assert np.array_equal(keep, cap_per_capture(captures, 4, seed=0))
    # another capture set leaves capture a's choice unchanged
    other = cap_per_capture(["a"] * 10 + ["z"] * 9, 4, seed=0)
    assert np.array_equal(other[:10], keep[:10])
    assert cap_per_capture(captures, None, seed=0).all()


def test_counts_and_class_weights():
    labels = np.array([0, 0, 0, 1])
    assert label_counts(labels) == {"benign": 3, "botnet": 1}
    weights = class_weights(labels)
    assert weights["benign"] == 4 / 6 and weights["botnet"] == 2.0
    assert class_weights(np.array([0, 0]))["botnet"] == 0.0
    rows = family_counts(["botnet", "botnet", "benign"], ["neris", "neris", "neris"],
                         ["train", "test", "train"])
    assert rows == [
        {"label": "benign", "family": "neris", "train": 1, "val": 0, "test": 0, "total": 1},
        {"label": "botnet", "family": "neris", "train": 1, "val": 0, "test": 1, "total": 2},
    ]
