"""analysis/pareto.ipynb runs headless, top to bottom, against a sweep directory."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "analysis" / "pareto.ipynb"


def outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for k, v in out.get("data", {}).items() if k == "text/plain")
    return "\n".join(parts)


def run_notebook(sweep: Path, monkeypatch) -> tuple[str, int]:
    """Execute the notebook on `sweep`; (all text output, number of images). Raises
    CellExecutionError (naming the cell) if any cell fails."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("RAYKD_SWEEP", str(sweep))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    return outputs_text(nb), len(images)


def test_notebook_runs_headless(demo_sweep, monkeypatch):
    # a hand-built sweep with known figures (raykd.results.write_trial, real tiny checkpoints, a
    # real Optuna journal); test_notebook_runs_on_a_real_sweep runs it on a real Ray sweep
    text, images = run_notebook(demo_sweep, monkeypatch)
    assert "<Sweep 'demo'" in text
    assert "hypervolume: 0.3535" in text
    assert "pick: trial t0" in text and "raykd export" in text
    assert "alpha" in text and "accuracy" in text  # the importance table
    assert images == 2  # the front and the rounds


@pytest.mark.ray
@pytest.mark.slow
def test_notebook_runs_on_a_real_sweep(real_sweep, monkeypatch):
    """The notebook against the results of a real `raykd sweep` (local Ray, 2 trials x 2 rounds)."""
    text, images = run_notebook(real_sweep, monkeypatch)
    assert f"<Sweep '{real_sweep.name}'" in text
    assert "hypervolume:" in text
    # the pick cell names the model the query picks, or says why none is within 0.5 pt: which of
    # the two is decided here from the sweep's own rows, so the test fails if the cell says the other
    from raykd.analysis import open_sweep
    from raykd.analysis.sweep import NoCompleteTrialError

    sw = open_sweep(real_sweep)
    try:
        pick = sw.query(max_drop=0.5)
    except NoCompleteTrialError:  # the query's own refusal, which the cell prints
        pick = None
    if pick is not None:
        assert f"pick: trial {pick['trial_id']}" in text and "raykd export" in text
    else:
        assert "no complete trial" in text and "pick: trial" not in text
    assert images == 2
