"""The out-of-time design: folds in time order, the purge gap, refusal when history is too short."""

from __future__ import annotations

import pytest

from models.config import ConfigError, load_config, parse_config
from models.train import TrainingError, out_of_time_split
from tests.models.factories import quarter_ends


def test_latest_quarters_are_held_out_and_overlapping_labels_purged():
    dates = quarter_ends("2021-03-31", 16)
    split = out_of_time_split(dates, parse_config({}))
    assert split.test == dates[-2:]
    assert split.valid == dates[-4:-2]
    # a training label window (as_of, as_of + 12 months] must end by the first validation date
    assert split.purged == dates[-7:-4]
    assert split.train == dates[:-7]
    assert max(split.train) < min(split.valid) < min(split.test)


def test_without_purge_every_earlier_date_trains():
    dates = quarter_ends("2021-03-31", 8)
    split = out_of_time_split(dates, parse_config({"split": {"purge_overlap": False}}))
    assert split.train == dates[:4] and split.purged == []


@pytest.mark.parametrize("count", [3, 6, 8])
def test_too_little_history_is_an_error_that_says_what_is_missing(count):
    with pytest.raises(TrainingError, match=r"as-of dates|training dates"):
        out_of_time_split(quarter_ends("2021-03-31", count), parse_config({}))


def test_config_overrides_and_validation(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text("[lightgbm]\nlearning_rate = 0.1\n[split]\ntest_quarters = 3\n")
    config = load_config(path)
    assert config.lightgbm.learning_rate == 0.1 and config.split.test_quarters == 3
    assert config.lightgbm.num_leaves == load_config().lightgbm.num_leaves  # defaults kept
    path.write_text("[split]\ntest_quarters = 0\n")
    with pytest.raises(ConfigError, match=r"split\.test_quarters"):
        load_config(path)
    path.write_text("[calibration]\nmethod = 'magic'\n")
    with pytest.raises(ConfigError, match=r"calibration\.method"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    for bad in ("[1]", "[7, 'big']", "[" + ", ".join(["8"] * 9) + "]", "[31]"):
        path.write_text(f"[search]\nnum_leaves = {bad}\n")
        with pytest.raises(ConfigError, match=r"search\.num_leaves"):
            load_config(path)


def test_the_tree_search_stays_on_the_fast_explainer():
    # Every tree size the search may choose is one pattern TreeSHAP explains (n leaves, n - 1 internal nodes).
    from models.config import MAX_SEARCH_LEAVES
    from models.treeshap import MAX_INTERNAL_NODES

    assert MAX_SEARCH_LEAVES - 1 == MAX_INTERNAL_NODES
    assert max(load_config().tree_sizes()) <= MAX_SEARCH_LEAVES
