"""The model card and the plots are drawn from a trained model and its evaluation alone."""

from __future__ import annotations

from models.card import model_card
from models.plots import save_plots


def test_the_card_quotes_the_run(trained, evaluation, policy):
    card = model_card(trained, evaluation, policy, run_id="r1", model_version="4")
    assert card.startswith("# Model card — ipcredit version 4")
    assert f"LightGBM, {trained.best_iteration} trees" in card and f"policy `{policy.version_tag}`" in card
    assert f"The model's AUC is {evaluation.metric('model', 'auc'):.4f} against" in card
    assert f"its ECE is {evaluation.metric('model', 'ece'):.4f}" in card
    assert evaluation.ece_chance > 0 and f"up to {evaluation.ece_chance:.4f} on these rows by chance" in card


def test_the_plots_are_written(evaluation, tmp_path):
    paths = save_plots(evaluation, tmp_path, dependence=2)
    names = sorted(p.name for p in paths)
    assert {"shap_summary.png", "tier_chart.png", "calibration_curve.png"} <= set(names) and len(names) == 5
    assert all(p.stat().st_size > 0 for p in paths)
