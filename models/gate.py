"""The promotion gate: may a newly trained model replace the champion?

A pure decision on numbers measured on the *same* evaluation rows (the registry re-scores the champion on
the candidate's test fold when it can): better out-of-time AUC than the champion, calibration not worse,
tier outcome rates rising A to D, no industry below an AUC floor. ``models.registry`` applies it when it
registers a version and records the decision, check by check, with the version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from models.config import GateConfig

# How the first version's promotion reason begins: it is champion because there was none, gate or no gate.
FIRST_VERSION = "first version of the model (promoted automatically)"


@dataclass
class GateDecision:
    """The outcome of the promotion gate, check by check."""

    passed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)
    champion_version: str | None = None
    comparison: str = ""

    @property
    def failed(self) -> list[str]:
        """The names of the checks that failed, in the gate's order."""
        return [c["name"] for c in self.checks if not c["passed"]]

    def describe(self) -> str:
        marks = "; ".join(f"{'ok' if c['passed'] else 'FAIL'} {c['name']}: {c['detail']}" for c in self.checks)
        return f"gate {'passed' if self.passed else 'failed'} ({self.comparison}): {marks}"


def ece_limit(max_ece: float, chance: float) -> float:
    """The largest ECE that passes: ``max_ece``, or what chance gives a perfectly calibrated model on the
    same rows (``models.metrics.calibrated_ece``) when that is larger — on a small fold 0.02 is within noise."""
    return max_ece if math.isnan(chance) else max(max_ece, chance)


def gate(candidate: dict[str, Any], champion: dict[str, float] | None, config: GateConfig) -> GateDecision:
    """Decide whether ``candidate`` may replace ``champion``.

    Both dicts give ``auc`` and ``ece`` measured on the *same* evaluation rows; ``candidate`` also gives
    ``tier_rates_rise`` (1.0 or 0.0; with ``tier_rates``, the words saying over which tiers, when known) and
    ``industry_auc_min`` (NaN when no industry is large enough) and may give ``ece_chance``, the ECE a
    perfectly calibrated model shows on its rows by chance (the ECE limit is never below it);
    ``champion`` may give ``gain_low`` and ``gain_high``, the paired bootstrap interval of the candidate's
    AUC gain on those rows, and ``ece_increase_low`` and ``ece_increase_high``, that of its ECE increase.
    Without a champion only the candidate's own checks apply.
    """
    checks = []

    def check(name: str, passed: bool, detail: str) -> None:
        checks.append({"name": name, "passed": bool(passed), "detail": detail})

    if champion is not None:
        gain = candidate["auc"] - champion["auc"]
        low, high = champion.get("gain_low", float("nan")), champion.get("gain_high", float("nan"))
        measured = not math.isnan(low)
        interval = f"; 95 % interval [{low:+.4f}, {high:+.4f}]" if measured else "; no interval (not re-scored)"
        check(
            "auc",
            gain > config.min_auc_gain and (not measured or low > -config.auc_margin),
            f"AUC {candidate['auc']:.4f} vs champion {champion['auc']:.4f} (gain {gain:+.4f}{interval}; needs > "
            f"{config.min_auc_gain:+.4f}, and not credibly worse: interval above {-config.auc_margin:+.4f})",
        )
        # Not worse by more than the tolerance, or not credibly so: on a small fold the ECE of either model
        # moves by more than 0.005 with the sample, and the paired interval of the increase says how much.
        limit = champion["ece"] + config.ece_tolerance
        low, high = champion.get("ece_increase_low", math.nan), champion.get("ece_increase_high", math.nan)
        spread = (
            f"; paired 95 % interval of the increase [{low:+.4f}, {high:+.4f}], not credibly worse while it reaches "
            f"+{config.ece_tolerance:.4f} or below"
            if not math.isnan(low)
            else ""
        )
        check(
            "calibration",
            candidate["ece"] <= limit or (not math.isnan(low) and low <= config.ece_tolerance),
            f"ECE {candidate['ece']:.4f} vs champion {champion['ece']:.4f} (at most {limit:.4f}{spread})",
        )
        mine, theirs = candidate.get("fairness_flags", math.nan), champion.get("fairness_flags", math.nan)
        if not (math.isnan(mine) or math.isnan(theirs)):
            check(
                "fairness",
                mine <= theirs,
                f"{int(mine)} groups flagged against the champion's {int(theirs)} on the same rows",
            )
    chance = candidate.get("ece_chance", math.nan)
    limit = ece_limit(config.max_ece, chance)
    check(
        "ece_limit",
        candidate["ece"] <= limit,
        f"ECE {candidate['ece']:.4f} (at most {config.max_ece}"
        + (f"; a perfectly calibrated model shows up to {chance:.4f} on these rows by chance)" if chance > 0 else ")"),
    )
    psi = candidate.get("score_psi", math.nan)
    if not math.isnan(psi):
        check(
            "reference_psi",
            psi < config.max_score_psi,
            f"score PSI of the latest quarter against the training reference {psi:.3f} (under {config.max_score_psi})",
        )
    rises = bool(candidate["tier_rates_rise"])
    check(
        "tier_rates",
        rises,
        candidate.get("tier_rates")
        or ("outcome rates rise strictly from A to D" if rises else "outcome rates do not rise strictly from A to D"),
    )
    floor = candidate.get("industry_auc_min", float("nan"))
    check(
        "industry_auc_floor",
        math.isnan(floor) or floor >= config.industry_auc_floor,
        "no industry large enough to measure"
        if math.isnan(floor)
        else f"lowest industry AUC {floor:.4f} (floor {config.industry_auc_floor})",
    )
    return GateDecision(passed=all(c["passed"] for c in checks), checks=checks)


def gate_caveat(metadata: dict[str, Any], version: str | None) -> str | None:
    """What the scores of registered ``version`` (its scorer's ``metadata``) should be read with when it
    failed its promotion gate, or None.

    A version becomes champion only through the gate, with two exceptions: the first version (the contract's
    ``score`` uses the champion, so there has to be one) and a promotion by hand with a reason. Whoever uses
    its scores then sees which checks it failed and why it scores all the same."""
    if metadata.get("gate") != "failed":
        return None
    return failed_gate_words(version, metadata.get("gate_failed") or [], str(metadata.get("promotion_reason", "")))


def failed_gate_words(version: str | None, failed: list[str], reason: str) -> str:
    """The words of ``gate_caveat`` for ``version``, which failed the checks ``failed`` and was promoted for
    ``reason`` (empty when it was not promoted)."""
    checks = ", ".join(failed) or "see `ipcredit models`"
    if reason.startswith(FIRST_VERSION):
        why = "it became champion only because it was the first version"
    elif reason:
        why = f"it was promoted by hand: {reason[:200]}"
    else:
        why = "it was not promoted through the gate"
    return (
        f"model version {version} failed its promotion gate ({checks}); {why}. Read its tiers with that in "
        "mind until a version passes (`ipcredit models` gives each check's words)"
    )
