"""Static checks of the cluster deployment files: cluster/*.yaml and cluster/Dockerfile.

Fast (no cloud, no Ray cluster): each file is loaded with PyYAML and checked for the fields raykd
relies on (trial slots on the head only, GPU workers autoscaling from 0, the dashboard not exposed,
token auth, Ray pinned to 2.60, no credentials). The AWS and GCP configs are also validated against
the autoscaler JSON schema shipped inside the installed Ray package.

The checks are functions that return a list of problems; the `*_can_fail` tests apply one
mutation at a time to a good file and assert that the matching check reports it.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"

RAY_PIN = re.compile(r"^2\.60\.\d+$")
RAY_IMAGE = re.compile(r"^rayproject/ray(-ml)?:2\.60\.\d+(-py3\d+)?(-(gpu|cpu|cu\d+))?$")
AWS_KEY_ID = re.compile(r"(AKIA|ASIA)[0-9A-Z]{16}")
AWS_GPU_TYPE = re.compile(r"^(g4dn|g5|g6|g6e|gr6|p3|p3dn|p4d|p4de|p5|p5e|p5en|p6-[\w-]+)\.")
GCP_GPU_MACHINE = re.compile(r"^(a2|a3|a4|g2|g4)-")
SECRET_WORDS = {"secret", "password", "passwd", "token", "credential", "credentials", "apikey"}
SECRET_PAIRS = {("access", "key"), ("private", "key"), ("api", "key"), ("secret", "key")}
NOT_A_SECRET_VALUE = {"path", "mode", "ref", "name"}  # names a secret's location, not the secret
NON_CUSTOM = {"CPU", "GPU", "memory", "object_store_memory"}
EXPECTED = {"aws.yaml": ("aws", "us-west-2"), "gcp.yaml": ("gcp", "us-central1")}


# --------------------------------------------------------------------------- loading


def load(name: str) -> Any:
    with open(CLUSTER / name) as f:
        return yaml.safe_load(f)


def yaml_files() -> list[Path]:
    return sorted(CLUSTER.glob("*.yaml"))


def is_rayjob(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == "RayJob"


def is_autoscaler(doc: Any) -> bool:
    return isinstance(doc, dict) and "provider" in doc and "available_node_types" in doc


# --------------------------------------------------------------------------- helpers


def ray_start_flags(command: str) -> dict[str, str]:
    """`--flag=value` / `--flag value` options of the `ray start` in one shell command line.

    Parsed like the shell would (shlex), so `--resources='{"trial_slot": 4}'` yields the JSON text.
    """
    tokens = shlex.split(command)
    if "ray" not in tokens:
        return {}
    i = tokens.index("ray")
    if i + 1 >= len(tokens) or tokens[i + 1] != "start":
        return {}
    flags: dict[str, str] = {}
    rest = tokens[i + 2:]
    for j, tok in enumerate(rest):
        if not tok.startswith("--"):
            continue
        tok = tok.rstrip(";")
        if "=" in tok:
            key, value = tok[2:].split("=", 1)
        elif j + 1 < len(rest) and not rest[j + 1].startswith("--"):
            key, value = tok[2:], rest[j + 1].rstrip(";")
        else:
            key, value = tok[2:], "true"
        flags[key] = value
    return flags


def start_commands(commands: list[str], head: bool) -> list[dict[str, str]]:
    found = [ray_start_flags(c) for c in commands]
    return [f for f in found if f and (("head" in f) == head)]


def custom_resources(resources: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (resources or {}).items() if k not in NON_CUSTOM}


def pip_ray_specs(commands: list[str]) -> list[str]:
    """Version specs given to `ray` / `ray[...]` in pip commands ('' when unpinned)."""
    specs = []
    for command in commands:
        if "pip" not in command:
            continue
        for tok in shlex.split(command):
            m = re.match(r"^ray(\[[^\]]*\])?((==|>=|<=|~=|!=|>|<).*)?$", tok)
            if m:
                specs.append(m.group(2) or "")
    return specs


def all_commands(cfg: dict) -> list[str]:
    keys = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
            "head_start_ray_commands", "worker_start_ray_commands")
    out = [c for k in keys for c in (cfg.get(k) or [])]
    for nt in cfg.get("available_node_types", {}).values():
        for k in ("initialization_commands", "worker_setup_commands"):
            out += nt.get(k) or []
    return out


def name_words(name: str) -> list[str]:
    """'AWS_SECRET_ACCESS_KEY' / 'secretKeyRef' / 'db-password' -> lower-case words."""
    return [w for w in re.split(r"[_\-.\s]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()) if w]


def looks_secret(name: str) -> bool:
    words = name_words(name)
    if not words or words[-1] in NOT_A_SECRET_VALUE or name == "ssh_private_key":  # Ray: a local path
        return False
    return bool(SECRET_WORDS & set(words)) or any(pair in SECRET_PAIRS for pair in itertools.pairwise(words))


def walk(node: Any, path: str = ""):
    """(path, key, value) for every mapping entry, recursively."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield path, k, v
            yield from walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")


# --------------------------------------------------------------------------- checks


def check_no_secrets(text: str, doc: Any) -> list[str]:
    problems = []
    if AWS_KEY_ID.search(text):
        problems.append("an AWS access key id (AKIA.../ASIA...) is written in the file")
    if "aws_secret_access_key" in text:
        problems.append("aws_secret_access_key appears in the file")
    if "-----BEGIN" in text:
        problems.append("a PEM block (private key) is written in the file")
    for path, key, value in walk(doc):
        if isinstance(key, str) and looks_secret(key) and isinstance(value, (str, int)) \
                and not isinstance(value, bool) and str(value).strip():
            problems.append(f"{path}.{key}: a secret-looking key holds a literal value")
        if key == "env" and isinstance(value, list):
            for entry in value:
                if isinstance(entry, dict) and looks_secret(str(entry.get("name", ""))) \
                        and "value" in entry:
                    problems.append(f"{path}.env {entry.get('name')}: literal value; use valueFrom")
        if key == "gcp_credentials":
            problems.append(f"{path}.gcp_credentials: credentials written into the config")
    return problems


def check_autoscaler(cfg: dict, provider_type: str, region: str) -> list[str]:
    p: list[str] = []
    provider = cfg.get("provider", {})
    if provider.get("type") != provider_type:
        p.append(f"provider.type is {provider.get('type')!r}, expected {provider_type!r}")
    if provider.get("region") != region:
        p.append(f"provider.region is {provider.get('region')!r}, expected {region!r}")
    if provider_type == "aws" and provider.get("cache_stopped_nodes") is not False:
        p.append("provider.cache_stopped_nodes must be false")
    if provider_type == "gcp" and not provider.get("availability_zone", "").startswith(region):
        p.append("provider.availability_zone must be in the region")

    types = cfg.get("available_node_types", {})
    head_name = cfg.get("head_node_type")
    head = types.get(head_name)
    if head is None:
        return p + [f"head_node_type {head_name!r} is not in available_node_types"]
    head_res = head.get("resources") or {}
    slots = head_res.get("trial_slot")
    if not (isinstance(slots, int) and not isinstance(slots, bool) and slots > 0):
        p.append(f"head node type must declare resources.trial_slot > 0 (got {slots!r})")
    if head_res.get("GPU", 0) != 0:
        p.append("head node type must not declare GPUs")
    head_nc = head.get("node_config", {})
    if provider_type == "aws" and AWS_GPU_TYPE.match(str(head_nc.get("InstanceType", ""))):
        p.append("head instance type is a GPU type; the head is a CPU node")
    if provider_type == "gcp" and (head_nc.get("guestAccelerators")
                                   or GCP_GPU_MACHINE.match(str(head_nc.get("machineType", "")))):
        p.append("head machine has GPUs; the head is a CPU node")

    heads = start_commands(cfg.get("head_start_ray_commands") or [], head=True)
    if len(heads) != 1:
        p.append(f"expected exactly one `ray start --head` in head_start_ray_commands, found {len(heads)}")
    for flags in heads:
        try:
            declared = json.loads(flags.get("resources", "{}"))
        except json.JSONDecodeError:
            declared = None
            p.append(f"head --resources is not JSON: {flags.get('resources')!r}")
        if declared is not None and declared != custom_resources(head_res):
            p.append(f"head --resources {declared} != head node type custom resources {custom_resources(head_res)}")
        host = flags.get("dashboard-host")
        if host != "127.0.0.1":
            p.append(f"head --dashboard-host must be 127.0.0.1, got {host!r}")
        if flags.get("num-gpus") != "0":
            p.append("head `ray start` must pass --num-gpus=0")
    for command in (cfg.get("head_start_ray_commands") or []) + (cfg.get("worker_start_ray_commands") or []):
        if "0.0.0.0" in command:
            p.append(f"a start command binds to 0.0.0.0: {command!r}")
        if "ray start" in command and "RAY_AUTH_MODE=token" not in command:
            p.append(f"`ray start` without RAY_AUTH_MODE=token: {command!r}")
        if "ray start" in command and "RAY_worker_niceness=0" not in command:
            p.append(f"`ray start` without RAY_worker_niceness=0 (chains would run at Ray's niceness 15): {command!r}")
    workers_start = start_commands(cfg.get("worker_start_ray_commands") or [], head=False)
    if not workers_start:
        p.append("worker_start_ray_commands has no `ray start --address=...`")
    for flags in workers_start:
        if "trial_slot" in flags.get("resources", ""):
            p.append("worker `ray start` declares trial_slot")

    workers = {k: v for k, v in types.items() if k != head_name}
    if not workers:
        p.append("no worker node types")
    for name, nt in workers.items():
        res = nt.get("resources") or {}
        nc = nt.get("node_config", {})
        if "trial_slot" in res:
            p.append(f"worker type {name} declares trial_slot (trial slots belong on the head only)")
        if nt.get("min_workers", 0) != 0:
            p.append(f"worker type {name}: min_workers must be 0 (autoscale from zero)")
        if not (isinstance(nt.get("max_workers"), int) and nt["max_workers"] >= 1):
            p.append(f"worker type {name}: max_workers must be >= 1")
        if provider_type == "aws":
            has_gpu = res.get("GPU", 0) > 0 or bool(AWS_GPU_TYPE.match(str(nc.get("InstanceType", ""))))
        else:  # GCP does not auto-detect: both the VM and the declared resources need the GPU
            accel = sum(a.get("acceleratorCount", 0) for a in nc.get("guestAccelerators") or [])
            has_gpu = accel > 0 and res.get("GPU", 0) == accel
            if accel and (nc.get("scheduling") or {}).get("onHostMaintenance") != "TERMINATE":
                p.append(f"worker type {name}: GPU VMs need scheduling.onHostMaintenance TERMINATE")
        if not has_gpu:
            p.append(f"worker type {name} has no GPU")
    largest = max((nt.get("max_workers", 0) for nt in workers.values()), default=0)
    if cfg.get("max_workers", 0) < largest:
        p.append(f"global max_workers {cfg.get('max_workers')} caps a worker type below its max_workers {largest}")

    # Ray 2.60 pinned: by the image (and per-type image overrides) and/or pip pins.
    docker = cfg.get("docker") or {}
    images = [docker[k] for k in ("image", "head_image", "worker_image") if docker.get(k)]
    images += [(nt.get("docker") or {}).get("worker_image") for nt in types.values()
               if (nt.get("docker") or {}).get("worker_image")]
    for image in images:
        if not RAY_IMAGE.match(image):
            p.append(f"docker image {image!r} is not pinned to rayproject/ray:2.60.x")
    specs = pip_ray_specs(all_commands(cfg))
    for spec in specs:
        if not (spec.startswith("==") and RAY_PIN.match(spec[2:])):
            p.append(f"pip installs ray{spec or ' (unpinned)'}; pin ray==2.60.x")
    if not images and not specs:
        p.append("neither a docker image nor setup_commands pin Ray 2.60")
    return p


def parse_ray_start_resources(value: Any) -> dict[str, Any]:
    """KubeRay's rayStartParams.resources goes through a shell: '"{\\"x\\": 1}"' -> {"x": 1}."""
    if value in (None, ""):
        return {}
    parts = shlex.split(str(value))
    if len(parts) != 1:
        raise ValueError(f"resources must be one shell word, got {value!r}")
    return json.loads(parts[0])


def containers_of(group: dict) -> list[dict]:
    return ((group.get("template") or {}).get("spec") or {}).get("containers") or []


def gpu_limit(container: dict) -> int:
    limits = (container.get("resources") or {}).get("limits") or {}
    try:
        return int(limits.get("nvidia.com/gpu", 0))
    except (TypeError, ValueError):
        return 0


def check_rayjob(job: dict) -> list[str]:
    p: list[str] = []
    if job.get("apiVersion") != "ray.io/v1":
        p.append(f"apiVersion is {job.get('apiVersion')!r}, expected 'ray.io/v1'")
    if job.get("kind") != "RayJob":
        p.append(f"kind is {job.get('kind')!r}, expected 'RayJob'")
    spec = job.get("spec") or {}
    entry = str(spec.get("entrypoint", ""))
    if not entry.startswith("raykd sweep "):
        p.append(f"entrypoint must start with 'raykd sweep', got {entry!r}")
    words = shlex.split(entry) if entry else []
    storage = words[words.index("--storage") + 1] if "--storage" in words[:-1] else ""
    if not storage.startswith(("s3://", "gs://")):
        p.append(f"entrypoint --storage must be shared storage (s3:// or gs://), got {storage!r}")
    if spec.get("shutdownAfterJobFinishes") is not True:
        p.append("shutdownAfterJobFinishes must be true")
    ttl = spec.get("ttlSecondsAfterFinished")
    if not (isinstance(ttl, int) and ttl >= 0):
        p.append("ttlSecondsAfterFinished must be a non-negative integer")

    rc = spec.get("rayClusterSpec") or {}
    if not RAY_PIN.match(str(rc.get("rayVersion", ""))):
        p.append(f"rayClusterSpec.rayVersion must be 2.60.x, got {rc.get('rayVersion')!r}")
    if rc.get("enableInTreeAutoscaling") is not True:
        p.append("rayClusterSpec.enableInTreeAutoscaling must be true")

    head = rc.get("headGroupSpec") or {}
    groups = [head] + list(rc.get("workerGroupSpecs") or [])
    auth_by_operator = (rc.get("authOptions") or {}).get("mode") == "token"
    for group in groups:
        for c in containers_of(group):
            if not re.search(r"2\.60\.\d+", str(c.get("image", ""))):
                p.append(f"container {c.get('name')}: image {c.get('image')!r} does not pin Ray 2.60")
            env = {e.get("name"): e for e in c.get("env") or []}
            if not auth_by_operator and (env.get("RAY_AUTH_MODE") or {}).get("value") != "token":
                p.append(f"container {c.get('name')}: no token auth (authOptions.mode or RAY_AUTH_MODE)")
            if (env.get("RAY_worker_niceness") or {}).get("value") != "0":
                p.append(f"container {c.get('name')}: RAY_worker_niceness is not \"0\" (chains would run at Ray's niceness 15)")

    params = head.get("rayStartParams") or {}
    try:
        head_res = parse_ray_start_resources(params.get("resources"))
    except ValueError as exc:
        head_res = {}
        p.append(f"head rayStartParams.resources unreadable: {exc}")
    slots = head_res.get("trial_slot")
    if not (isinstance(slots, int) and not isinstance(slots, bool) and slots > 0):
        p.append(f"head rayStartParams.resources must declare trial_slot > 0 (got {slots!r})")
    if str(params.get("num-gpus", "0")) != "0" or any(gpu_limit(c) for c in containers_of(head)):
        p.append("the head group must have no GPUs")
    host = str(params.get("dashboard-host", "127.0.0.1"))
    if host not in ("127.0.0.1", "0.0.0.0"):
        p.append(f"head dashboard-host {host!r} must be 127.0.0.1 or 0.0.0.0 (pod-local)")
    if head.get("serviceType", "ClusterIP") != "ClusterIP":
        p.append(f"head serviceType {head.get('serviceType')!r} exposes the dashboard outside the cluster")

    workers = list(rc.get("workerGroupSpecs") or [])
    if not workers:
        p.append("no workerGroupSpecs")
    for w in workers:
        name = w.get("groupName")
        if w.get("minReplicas") != 0:
            p.append(f"worker group {name}: minReplicas must be 0")
        if not (isinstance(w.get("maxReplicas"), int) and w["maxReplicas"] >= 1):
            p.append(f"worker group {name}: maxReplicas must be >= 1")
        try:
            wres = parse_ray_start_resources((w.get("rayStartParams") or {}).get("resources"))
        except ValueError as exc:
            wres = {}
            p.append(f"worker group {name}: rayStartParams.resources unreadable: {exc}")
        if "trial_slot" in wres:
            p.append(f"worker group {name} declares trial_slot (trial slots belong on the head only)")
        if not any(gpu_limit(c) >= 1 for c in containers_of(w)):
            p.append(f"worker group {name} requests no nvidia.com/gpu")
    return p


def check_dockerfile(text: str) -> list[str]:
    p = []
    froms = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    if not froms or not all(RAY_IMAGE.match(f) for f in froms):
        p.append(f"Dockerfile FROM {froms} is not pinned to rayproject/ray:2.60.x")
    joined = text.replace("\\\n", " ")  # backslash-continued lines -> one line
    runs = re.findall(r"^RUN\s+(.*)$", joined, flags=re.MULTILINE)
    if not pip_ray_specs(runs):
        p.append("Dockerfile does not pin ray in its pip install")
    for spec in pip_ray_specs(runs):
        if not (spec.startswith("==") and RAY_PIN.match(spec[2:])):
            p.append(f"Dockerfile pip installs ray{spec or ' (unpinned)'}")
    return p


# --------------------------------------------------------------------------- the real files


def test_expected_files_exist_and_are_recognised() -> None:
    names = {f.name for f in yaml_files()}
    assert {"aws.yaml", "gcp.yaml", "rayjob.yaml"} <= names
    for f in yaml_files():
        doc = load(f.name)
        assert is_autoscaler(doc) or is_rayjob(doc), f"{f.name}: neither an autoscaler config nor a RayJob"


@pytest.mark.parametrize("name", [f.name for f in yaml_files()] + ["Dockerfile", "README.md"])
def test_no_secrets(name: str) -> None:
    text = (CLUSTER / name).read_text()
    doc = yaml.safe_load(text) if name.endswith(".yaml") else None
    assert check_no_secrets(text, doc) == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_autoscaler_config(name: str) -> None:
    assert check_autoscaler(load(name), *EXPECTED[name]) == []


@pytest.mark.parametrize("name", [f.name for f in yaml_files() if is_autoscaler(load(f.name))])
def test_every_autoscaler_config_is_checked(name: str) -> None:
    assert name in EXPECTED, f"{name}: add its provider/region to EXPECTED so it gets checked"


def ray_schema() -> dict:
    import ray

    with open(Path(ray.__file__).parent / "autoscaler" / "ray-schema.json") as f:
        return json.load(f)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_autoscaler_config_matches_rays_schema(name: str) -> None:
    import jsonschema  # a dependency of ray itself

    jsonschema.validate(load(name), ray_schema())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_autoscaler_config_passes_rays_own_validation(name: str) -> None:
    # What `ray up` does before touching the cloud: merge the provider defaults, then validate
    # (schema + head_node_type / max_workers consistency). Private Ray API, pinned to 2.60.
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(load(name)))


def test_rayjob() -> None:
    assert check_rayjob(load("rayjob.yaml")) == []


def test_dockerfile_pins_ray() -> None:
    assert check_dockerfile((CLUSTER / "Dockerfile").read_text()) == []


def head_trial_slots() -> dict[str, Any]:
    aws, gcp, job = load("aws.yaml"), load("gcp.yaml"), load("rayjob.yaml")
    return {
        "aws.yaml": _head(aws)["resources"].get("trial_slot"),
        "gcp.yaml": _head(gcp)["resources"].get("trial_slot"),
        "rayjob.yaml": parse_ray_start_resources(
            job["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"].get("resources")).get("trial_slot"),
    }


def check_trial_slots(space_text: str, slots: dict[str, Any]) -> list[str]:
    """Each file's head trial_slot must equal resources.concurrent_trials of the space."""
    concurrent = ((yaml.safe_load(space_text) or {}).get("resources") or {}).get("concurrent_trials", 1)
    return [f"{name}: trial_slot {n} != resources.concurrent_trials {concurrent}"
            for name, n in slots.items() if n != concurrent]


def test_trial_slots_match_search_space() -> None:
    for name in ("asdiv-minilm.yaml", "asdiv-structured.yaml"):  # the cluster sweeps: they must exist
        assert check_trial_slots((ROOT / "search_spaces" / name).read_text(), head_trial_slots()) == [], name


def test_trial_slot_check_can_fail() -> None:
    slots = head_trial_slots()
    assert len(set(slots.values())) == 1, f"the three cluster files disagree: {slots}"
    n = next(iter(slots.values()))
    assert check_trial_slots(f"resources: {{concurrent_trials: {n}}}", slots) == []
    assert len(check_trial_slots(f"resources: {{concurrent_trials: {n + 1}}}", slots)) == 3
    assert len(check_trial_slots("name: x", slots)) == (0 if n == 1 else 3)  # default is 1


# --------------------------------------------------------------------------- the checks can fail


def _head(cfg: dict) -> dict:
    return cfg["available_node_types"][cfg["head_node_type"]]


def _workers(cfg: dict) -> list[dict]:
    return [v for k, v in cfg["available_node_types"].items() if k != cfg["head_node_type"]]


def _replace_in_head_start(old: str, new: str) -> Callable[[dict], None]:
    def mutate(cfg: dict) -> None:
        cfg["head_start_ray_commands"] = [c.replace(old, new) for c in cfg["head_start_ray_commands"]]
    return mutate


AUTOSCALER_MUTATIONS: dict[str, tuple[Callable[[dict], None], str]] = {
    "wrong region": (lambda c: c["provider"].update(region="eu-west-1"), "provider.region"),
    "wrong provider": (lambda c: c["provider"].update(type="azure"), "provider.type"),
    "no head slots": (lambda c: _head(c)["resources"].pop("trial_slot"), "trial_slot > 0"),
    "zero head slots": (lambda c: _head(c)["resources"].update(trial_slot=0), "trial_slot > 0"),
    "start flag differs": (_replace_in_head_start('"trial_slot": 4', '"trial_slot": 2'), "head --resources"),
    "dashboard public": (_replace_in_head_start("--dashboard-host=127.0.0.1", "--dashboard-host=0.0.0.0"),
                         "--dashboard-host must be 127.0.0.1"),
    "dashboard flag gone": (_replace_in_head_start("--dashboard-host=127.0.0.1", ""), "--dashboard-host"),
    "head gpus": (_replace_in_head_start("--num-gpus=0", ""), "--num-gpus=0"),
    "no token auth": (_replace_in_head_start("RAY_AUTH_MODE=token", "RAY_AUTH_MODE=disabled"),
                      "without RAY_AUTH_MODE=token"),
    "niceness 15": (_replace_in_head_start("RAY_worker_niceness=0", "RAY_worker_niceness=15"), "without RAY_worker_niceness=0"),
    "worker slot": (lambda c: _workers(c)[0]["resources"].update(trial_slot=1), "declares trial_slot"),
    "worker min 1": (lambda c: _workers(c)[0].update(min_workers=1), "min_workers must be 0"),
    "worker max 0": (lambda c: _workers(c)[0].update(max_workers=0), "max_workers must be >= 1"),
    "global cap": (lambda c: c.update(max_workers=1), "caps a worker type"),
    "unpinned image": (lambda c: c["docker"].update(image="rayproject/ray:latest-gpu"), "not pinned"),
    "unpinned pip ray": (lambda c: c["setup_commands"].append("pip install -U ray[default]"), "unpinned"),
    "other ray pin": (lambda c: c["setup_commands"].append('pip install "ray==2.59.0"'), "pin ray==2.60"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("mutation", sorted(AUTOSCALER_MUTATIONS))
def test_autoscaler_checks_can_fail(name: str, mutation: str) -> None:
    cfg = copy.deepcopy(load(name))
    mutate, expected = AUTOSCALER_MUTATIONS[mutation]
    mutate(cfg)
    problems = check_autoscaler(cfg, *EXPECTED[name])
    assert any(expected in p for p in problems), problems


def test_aws_cpu_worker_is_not_a_gpu_worker() -> None:
    cfg = load("aws.yaml")
    _workers(cfg)[0]["node_config"]["InstanceType"] = "m6i.2xlarge"
    assert any("has no GPU" in p for p in check_autoscaler(cfg, *EXPECTED["aws.yaml"]))


@pytest.mark.parametrize("mutation", ["no accelerators", "resources without GPU", "live migration"])
def test_gcp_gpu_checks_can_fail(mutation: str) -> None:
    cfg = load("gcp.yaml")
    worker = _workers(cfg)[0]
    if mutation == "no accelerators":
        worker["node_config"].pop("guestAccelerators")
        expected = "has no GPU"
    elif mutation == "resources without GPU":
        worker["resources"].pop("GPU")
        expected = "has no GPU"
    else:
        worker["node_config"].pop("scheduling")
        expected = "onHostMaintenance"
    assert any(expected in p for p in check_autoscaler(cfg, *EXPECTED["gcp.yaml"]))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_schema_validation_can_fail(name: str) -> None:
    import jsonschema

    cfg = load(name)
    cfg["dashboard_host"] = "0.0.0.0"  # not a key of the autoscaler schema
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cfg, ray_schema())
    cfg = load(name)
    _head(cfg)["resources"]["trial_slot"] = 0.5  # custom resources are integers for the autoscaler
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cfg, ray_schema())


def _spec(job: dict) -> dict:
    return job["spec"]


def _rc(job: dict) -> dict:
    return job["spec"]["rayClusterSpec"]


RAYJOB_MUTATIONS: dict[str, tuple[Callable[[dict], None], str]] = {
    "api version": (lambda j: j.update(apiVersion="ray.io/v1alpha1"), "apiVersion"),
    "kind": (lambda j: j.update(kind="RayCluster"), "kind is"),
    "worker niceness": (lambda j: [e.update(value="15") for e in containers_of(_rc(j)["workerGroupSpecs"][0])[0]["env"]
                                   if e.get("name") == "RAY_worker_niceness"], "RAY_worker_niceness is not"),
    "entrypoint": (lambda j: _spec(j).update(entrypoint="python sweep.py"), "entrypoint must start"),
    "local storage": (lambda j: _spec(j).update(entrypoint="raykd sweep --space x.yaml --storage /tmp/runs"),
                      "shared storage"),
    "keep cluster": (lambda j: _spec(j).update(shutdownAfterJobFinishes=False), "shutdownAfterJobFinishes"),
    "no ttl": (lambda j: _spec(j).pop("ttlSecondsAfterFinished"), "ttlSecondsAfterFinished"),
    "ray version": (lambda j: _rc(j).update(rayVersion="2.59.0"), "rayVersion"),
    "no autoscaling": (lambda j: _rc(j).update(enableInTreeAutoscaling=False), "enableInTreeAutoscaling"),
    "no auth": (lambda j: _rc(j).pop("authOptions"), "token auth"),
    "head slots gone": (lambda j: _rc(j)["headGroupSpec"]["rayStartParams"].pop("resources"), "trial_slot > 0"),
    "head slots zero": (lambda j: _rc(j)["headGroupSpec"]["rayStartParams"].update(
        resources='"{\\"trial_slot\\": 0}"'), "trial_slot > 0"),
    "head gpu": (lambda j: _rc(j)["headGroupSpec"]["rayStartParams"].update({"num-gpus": "1"}), "no GPUs"),
    "exposed": (lambda j: _rc(j)["headGroupSpec"].update(serviceType="LoadBalancer"), "serviceType"),
    "worker slot": (lambda j: _rc(j)["workerGroupSpecs"][0]["rayStartParams"].update(
        resources='"{\\"trial_slot\\": 1}"'), "declares trial_slot"),
    "worker min": (lambda j: _rc(j)["workerGroupSpecs"][0].update(minReplicas=1), "minReplicas must be 0"),
    "worker max": (lambda j: _rc(j)["workerGroupSpecs"][0].update(maxReplicas=0), "maxReplicas must be >= 1"),
    "worker no gpu": (lambda j: [c["resources"]["limits"].pop("nvidia.com/gpu")
                                 for c in _rc(j)["workerGroupSpecs"][0]["template"]["spec"]["containers"]],
                      "requests no nvidia.com/gpu"),
    "unpinned image": (lambda j: _rc(j)["headGroupSpec"]["template"]["spec"]["containers"][0].update(
        image="rayproject/ray:latest-gpu"), "does not pin Ray 2.60"),
}


@pytest.mark.parametrize("mutation", sorted(RAYJOB_MUTATIONS))
def test_rayjob_checks_can_fail(mutation: str) -> None:
    job = copy.deepcopy(load("rayjob.yaml"))
    mutate, expected = RAYJOB_MUTATIONS[mutation]
    mutate(job)
    problems = check_rayjob(job)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("leak", ["key id", "credentials file key", "literal env", "secret mapping", "pem"])
def test_secret_checks_can_fail(leak: str) -> None:
    job = load("rayjob.yaml")
    text = (CLUSTER / "rayjob.yaml").read_text()
    fake_id = "AKIA" + "ABCDEFGHIJKLMNOP"  # the pattern, not a key
    if leak == "key id":
        text += f"\n# {fake_id}\n"
    elif leak == "credentials file key":
        text += "\n# aws_secret_access_key = x\n"
    elif leak == "literal env":
        _rc(job)["headGroupSpec"]["template"]["spec"]["containers"][0]["env"].append(
            {"name": "AWS_SECRET_ACCESS_KEY", "value": "not-a-real-secret"})
    elif leak == "secret mapping":
        job["metadata"]["annotations"] = {"db-password": "hunter2"}
    else:
        text += "\n-----BEGIN RSA PRIVATE KEY-----\n"
    assert check_no_secrets(text, job) != []


def test_dockerfile_check_can_fail() -> None:
    text = (CLUSTER / "Dockerfile").read_text()
    assert check_dockerfile(text.replace("rayproject/ray:2.60.0", "rayproject/ray:latest")) != []
    assert check_dockerfile(text.replace('"ray[default,tune,train]==2.60.0"', '"ray[default]"')) != []


def test_ray_start_flag_parser() -> None:
    flags = ray_start_flags("ulimit -n 65536; export A=b; ray start --head --port=6379 "
                            "--resources='{\"trial_slot\": 4}' --dashboard-host 127.0.0.1 --block")
    assert flags == {"head": "true", "port": "6379", "resources": '{"trial_slot": 4}',
                     "dashboard-host": "127.0.0.1", "block": "true"}
    assert ray_start_flags("ray stop") == {}
    assert parse_ray_start_resources('"{\\"trial_slot\\": 4}"') == {"trial_slot": 4}
