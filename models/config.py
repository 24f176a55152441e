"""Training configuration: the out-of-time split, LightGBM hyper-parameters, calibration, evaluation, gate.

The defaults live in ``models/train.toml``; ``load_config(path)`` reads a user file on top of them, so a
file only needs the values it changes. Everything is validated on load and logged with every run.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.errors import InvalidInput, validation_summary
from features.files import read_small_text

DEFAULT_CONFIG_PATH = Path(__file__).with_name("train.toml")
# The largest tree the scorer explains with pattern TreeSHAP (models/treeshap.py: 15 internal nodes).
MAX_SEARCH_LEAVES = 16


class ConfigError(InvalidInput):
    """The training configuration is missing or invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Strict):
    test_quarters: int = Field(default=2, ge=1)
    valid_quarters: int = Field(default=2, ge=1)
    purge_overlap: bool = True
    min_train_quarters: int = Field(default=2, ge=1)

    def min_dates(self) -> int:
        """The fewest consecutive quarterly as-of dates the design can use: train, the purged quarters
        (whose 12-month outcome windows reach into the held-out period), valid and test."""
        purged = 3 if self.purge_overlap else 0
        return self.min_train_quarters + purged + self.valid_quarters + self.test_quarters


class LightGBMConfig(_Strict):
    """LightGBM parameters passed through unchanged (names as in the LightGBM docs)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    objective: Literal["binary"] = "binary"
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_leaves: int = Field(default=15, ge=2)
    max_depth: int = -1
    min_child_samples: int = Field(default=200, ge=1)
    seed: int = 20240101
    deterministic: bool = True
    num_threads: int = Field(default=0, ge=0)
    monotone_constraints_method: Literal["basic", "intermediate", "advanced"] = "intermediate"


class SearchConfig(_Strict):
    """Tree sizes tried beside ``lightgbm.num_leaves``, each fitted on train and early-stopped on valid; the
    best validation AUC wins (a tie: the smaller tree). The test fold is never looked at. ``[]``: no search.

    At most ``MAX_SEARCH_LEAVES``: larger trees fall off the pattern TreeSHAP path of scoring
    (``models.treeshap.MAX_INTERNAL_NODES``) onto LightGBM's ``pred_contrib``, ten times slower per row; a
    larger ``lightgbm.num_leaves`` is still taken, as a deliberate choice."""

    num_leaves: tuple[Annotated[int, Field(ge=2, le=MAX_SEARCH_LEAVES)], ...] = Field(default=(7,), max_length=8)
    # Each tree size is also fitted pretrained: boosting first learns ``outcome_records`` (how many adverse
    # and signal records the outcome window holds, a Poisson objective, early-stopped on valid) and then goes
    # on from those trees on the outcome itself. The validation AUC decides between the two as between sizes.
    pretrain: bool = True
    # When the snapshots span more as-of dates than this, every candidate is also fitted on the training dates
    # of the latest ``recent_quarters`` alone (the same valid and test dates): a thin record gains from every
    # year it has, one whose older years come from another era loses by them (docs/real-record.md); the
    # validation AUC decides. 0: all dates only.
    recent_quarters: int = Field(default=16, ge=0, le=400)


class BoostingConfig(_Strict):
    max_rounds: int = Field(default=1000, ge=1)
    early_stopping_rounds: int = Field(default=50, ge=1)


class CalibrationConfig(_Strict):
    method: Literal["platt", "isotonic"] = "platt"


class EvaluationConfig(_Strict):
    ece_bins: int = Field(default=10, ge=2)
    min_group_rows: int = Field(default=300, ge=1)
    min_group_positives: int = Field(default=20, ge=1)
    min_tier_rows: int = Field(default=100, ge=1)  # tiers judged by the tier-rate check (rows in the test fold)
    shap_sample: int = Field(default=5000, ge=10)
    scorecard_max_rows: int = Field(default=300_000, ge=100)
    bootstrap: int = Field(default=200, ge=0)  # resamples for the intervals (0: none)
    # The drift reference is fixed from the training rows of the latest this many training dates (0: all).
    reference_quarters: int = Field(default=4, ge=0, le=400)


class GateConfig(_Strict):
    min_auc_gain: float = 0.0
    ece_tolerance: float = Field(default=0.005, ge=0)
    max_ece: float = Field(default=0.02, gt=0)
    industry_auc_floor: float = Field(default=0.65, ge=0, le=1)
    # The challenger may not be credibly worse: the lower end of the paired 95 % interval of its AUC gain
    # over the champion on the same rows must lie above -auc_margin.
    auc_margin: float = Field(default=0.005, ge=0)
    # The score's PSI between the reference rows (the latest training dates) and the test fold (the latest
    # quarter) must stay out of the "major" band: a model already stale on its own latest data is not promoted.
    max_score_psi: float = Field(default=0.25, gt=0)


class TrainConfig(_Strict):
    split: SplitConfig = SplitConfig()
    lightgbm: LightGBMConfig = LightGBMConfig()
    boosting: BoostingConfig = BoostingConfig()
    search: SearchConfig = SearchConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    gate: GateConfig = GateConfig()

    def tree_sizes(self) -> list[int]:
        """The ``num_leaves`` values training fits, smallest first (``lightgbm.num_leaves`` among them)."""
        return sorted({self.lightgbm.num_leaves, *self.search.num_leaves})

    def lightgbm_params(self) -> dict[str, Any]:
        """The LightGBM parameter dict (without the catalogue's monotone constraints)."""
        params = self.lightgbm.model_dump()
        params.setdefault("verbosity", -1)
        return params

    def flat(self) -> dict[str, Any]:
        """``section.key -> value``, for logging as run parameters."""
        return {
            f"{section}.{key}": value for section, values in self.model_dump().items() for key, value in values.items()
        }


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(read_small_text(Path(path)))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the training config: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def parse_config(raw: dict[str, Any], *, source: str = "<config>") -> TrainConfig:
    """Validate a config mapping laid over the defaults of ``models/train.toml``."""
    merged = _merge(_read(DEFAULT_CONFIG_PATH), raw)
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid training config: {validation_summary(exc)}") from exc


def load_config(path: Path | None = None) -> TrainConfig:
    """The default training config, with the TOML file at ``path`` (if any) laid over it."""
    if path is None:
        return parse_config({}, source=str(DEFAULT_CONFIG_PATH))
    return parse_config(_read(path), source=str(path))
