"""A trial's round history is read from its last checkpoint; an unreadable one is an error the
user sees in the trial's row, never an empty history that passes for a trial without rounds."""

import json

from raykd.distributed.trial_results import read_history


def test_a_readable_history_is_returned_and_no_checkpoint_means_no_rounds(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"records": [{"round": 1}, {"round": 2}]}))
    assert read_history(str(tmp_path)) == ([{"round": 1}, {"round": 2}], None)
    assert read_history(None) == ([], None)


def test_an_unreadable_history_says_why(tmp_path):
    cases = {"missing": None, "torn": "{\"records\": [", "no-records": "{}", "not-rounds": "{\"records\": [1, 2]}"}
    for name, text in cases.items():
        d = tmp_path / name
        d.mkdir()
        if text is not None:
            (d / "state.json").write_text(text)
        records, why = read_history(str(d))
        assert records == [] and why is not None and why.startswith("round history unreadable"), (name, why)
        assert str(d / "state.json") in why
