"""Several Ray nodes (ray.cluster_utils.Cluster): a worker node dies mid-chain, the chain's
worker group restarts on the spare node from the last round checkpoint, and the sweep still
records every trial as complete with every round."""

from __future__ import annotations

import json
import threading
import time

import pytest
from sweep_spaces import small_space

from raykd.search.space import parse_space
from raykd.distributed.sweep import run_sweep
from raykd.results.store import read_trials

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "resources": {"trial_slot": 1}, "include_dashboard": False})
    nodes = [c.add_node(num_cpus=1) for _ in range(3)]  # 2 for the DDP workers, 1 spare (added up front: main thread)
    c.wait_for_nodes()
    yield c, nodes
    c.shutdown()


def _remove_a_busy_worker_node(cluster, nodes, root, removed: list) -> None:
    """Once round 1 is checkpointed, kill a node that hosts a Train worker (all of its CPU taken)."""
    import ray
    from ray._private.state import available_resources_per_node

    end = time.time() + 300
    while time.time() < end and not removed:
        if ray.is_initialized() and any(root.glob("train/chain-*/checkpoint_*/state.json")):
            free = available_resources_per_node()
            for node in nodes:  # a resource fully in use is left out of the node's entry
                if node.node_id in free and free[node.node_id].get("CPU", 0.0) == 0.0:
                    cluster.remove_node(node, allow_graceful=False)
                    removed.append(node.node_id)
                    return
        time.sleep(0.5)


def test_sweep_survives_a_worker_node_failure(cluster, tiny_teacher_dir, tmp_path):
    c, nodes = cluster
    raw = small_space(tiny_teacher_dir, tmp_path / "runs", name="nodes", num_samples=1,
                      fixed={"rounds": 3, "steps_per_round": 10}, speed={"retime_rounds": 0},
                      resources={"workers": 2, "cpus_per_worker": 1, "concurrent_trials": 1})
    root = tmp_path / "runs" / "nodes"
    removed: list[str] = []
    chaos = threading.Thread(target=_remove_a_busy_worker_node, args=(c, nodes, root, removed), daemon=True)
    chaos.start()
    run_sweep(parse_space(raw), address=c.address, progress=False, log=lambda _m: None)
    chaos.join(timeout=5)
    assert removed, "no worker node was removed mid-chain"
    rows = read_trials(root).to_pandas()
    assert list(rows.status) == ["complete"]
    assert [r["round"] for r in json.loads(rows.rounds_json[0])] == [1, 2, 3]
