"""Multi-objective successive halving as a Ray Tune scheduler: a thin shell around
`raykd.search.successive_halving` (the rules, Ray-free).

Every result a chain reports at a rung round is handed to the rules; a "stop" stops the trial
(Tune's STOP), which the searcher then tells Optuna as PRUNED and the results store records as
`pruned` with `stopped_by: mo-successive-halving`. The rung records are written to
`<sweep>/results/halving.json` after every decision and read back on first use, so a resumed
sweep (whose scheduler Tune unpickles as it was at the start) keeps deciding on every trial seen.
"""

from __future__ import annotations

import json
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from raykd import storage
from raykd.search.space import SweepSpace
from raykd.distributed.worker import CHAIN_DONE
from raykd.search.successive_halving import SuccessiveHalving

STATE_NAME = "halving.json"
ACCURACY_FLOOR = "accuracy-floor"  # `stopped_by` of a chain the floor stopped


def below_accuracy_floor(space: SweepSpace, result: dict[str, Any]) -> bool:
    """The accuracy-floor rule (`early_stop: {accuracy_floor, after_round}`): an unfinished chain
    whose accuracy after `after_round` is below the floor. One definition for the stopper that
    applies it and the results row that names it as the cause."""
    if space.accuracy_floor is None or result.get(CHAIN_DONE, False):
        return False
    floor, after = space.accuracy_floor
    accuracy = result.get("accuracy")
    return int(result.get("round", 0) or 0) >= after and accuracy is not None and float(accuracy) < floor


def state_uri(root: str) -> str:
    return storage.join(root, "results", STATE_NAME)


def load_state(root: str, space: SweepSpace) -> SuccessiveHalving:
    uri = state_uri(root)
    if storage.exists(uri):
        return SuccessiveHalving.from_dict(json.loads(storage.read_bytes(uri)))
    return SuccessiveHalving(space.halving)


class HalvingScheduler(FIFOScheduler):
    def __init__(self, space: SweepSpace, root: str) -> None:
        super().__init__()
        self.space, self.root = space, root
        self._rules: SuccessiveHalving | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_rules": None}  # reread from storage after a restore

    @property
    def rules(self) -> SuccessiveHalving:
        if self._rules is None:
            self._rules = load_state(self.root, self.space)
        return self._rules

    def set_search_properties(self, metric: Any, mode: Any, **spec: Any) -> bool:
        return True  # ranks on its own coordinates, whatever Tune's single metric would be

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        rounds, round_ = result.get("rounds"), result.get("round")
        if not isinstance(rounds, int) or not isinstance(round_, int):
            return TrialScheduler.CONTINUE
        decision = self.rules.on_round(trial.trial_id, round_, rounds, result)
        if decision is None:
            return TrialScheduler.CONTINUE
        storage.write_bytes_atomic(state_uri(self.root), json.dumps(self.rules.to_dict(), indent=1).encode())
        return TrialScheduler.CONTINUE if decision.go_on else TrialScheduler.STOP

    def stopped_by_me(self, trial_id: str) -> bool:
        """Read from storage, not this object's cache: after a resume Tune decides with its own
        unpickled scheduler while the results callback holds another instance."""
        return trial_id in load_state(self.root, self.space).stopped()

    def debug_string(self) -> str:
        stopped = len(self.rules.stopped())
        return f"MO successive halving (eta {self.rules.config.eta}): {stopped} chain(s) stopped"
