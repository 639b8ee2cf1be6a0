"""Replacing one age recipient everywhere, in phases (``sopsflow rotate-recipient``).

A cluster's decryption key cannot be swapped in one step: the files and the
cluster's Secret change in different places, at different times. The safe
order, one phase per invocation:

1. ``add``: NEW goes next to OLD in every key group of every creation rule
   that lists OLD, and every file holding OLD is re-wrapped (same data key);
2. ``secret``: the Flux ``sops-age`` Secret with both identities is printed;
3. ``confirm``: the cluster has applied it (``--confirm-cluster NAME``);
4. ``remove``: OLD leaves the rules, every file that held it gets a new data
   key, and the exposure report lists what OLD could read;
5. ``final``: the Secret with NEW alone is printed.

The plan is a file, ``.sopsflow/rotations/<id>.yaml``, committed with the
changes of each phase. It holds public keys and file names only. Each phase
records itself there when it completes; a phase that stops half-way is run
again and finishes (its edits are idempotent). ``sopsflow verify`` reads the
plans: from phase 4 on, OLD is retired and a rule or file that still lists it
is an error.
"""

from __future__ import annotations

import datetime
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import errors
from ..errors import SopsError
from ..lazyre import compile_lazy
from .coverage import Problem

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from ..config.rules import Config, CreationRule
    from ..stores import Store
    from ..tree import TreeValue
    from .coverage import Cluster, TreeFile
    from .updatekeys import RuleCache

ROTATIONS_DIR = ".sopsflow/rotations"
PHASES = ("add", "secret", "confirm", "remove", "final")
PHASE_TITLES = {
    "add": "add NEW next to OLD in the rules and re-wrap every file",
    "secret": "print the Secret with both identities",
    "confirm": "the cluster confirms it holds both keys",
    "remove": "remove OLD and rotate the data keys (exposure report)",
    "final": "print the Secret with NEW alone",
}
CONFIG_NAME = ".sops.yaml"
SETTINGS_NAME = ".sopsflow.yaml"
_ID = compile_lazy(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_HEADER = (
    "# A recipient rotation in phases (sopsflow rotate-recipient). Commit this file\n"
    "# with each phase's changes: `sopsflow verify` reads it, and once phase `remove`\n"
    "# has started a rule or file that still lists `old` fails verify.\n"
)


@dataclass
class Plan:
    id: str
    old: str
    new: str
    cluster: str | None = None
    started: str = ""
    #: phase -> what it recorded; "done" (a timestamp) once complete
    phases: dict[str, dict[str, TreeValue]] = field(default_factory=dict)

    def done(self, phase: str) -> bool:
        return bool(self.phases.get(phase, {}).get("done"))

    @property
    def next_phase(self) -> str | None:
        for phase in PHASES:
            if not self.done(phase):
                return phase
        return None

    @property
    def retired(self) -> bool:
        """OLD is on its way out of the rules (phase `remove` started)."""
        return "remove" in self.phases

    def to_yaml(self) -> str:
        import yaml

        doc: dict[str, TreeValue] = {"version": 1, "id": self.id, "old": self.old, "new": self.new}
        if self.cluster:
            doc["cluster"] = self.cluster
        doc["started"] = self.started
        doc["phases"] = {p: self.phases[p] for p in PHASES if p in self.phases}
        return _HEADER + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1 << 16)

    @classmethod
    def from_yaml(cls, data: bytes, source: str) -> Plan:
        import yaml

        try:
            doc = yaml.safe_load(data)
        except (yaml.YAMLError, ValueError, RecursionError):
            raise SopsError(errors.GENERIC, f"{source}: not valid YAML") from None
        if not isinstance(doc, dict):
            raise SopsError(errors.GENERIC, f"{source}: expected a mapping")
        for key in ("id", "old", "new"):
            if not isinstance(doc.get(key), str) or not doc[key]:
                raise SopsError(errors.GENERIC, f"{source}: `{key}` must be a string")
        phases = doc.get("phases") or {}
        if not isinstance(phases, dict) or any(p not in PHASES or not isinstance(v, dict) for p, v in phases.items()):
            raise SopsError(errors.GENERIC, f"{source}: `phases` must map {', '.join(PHASES)} to mappings")
        cluster = doc.get("cluster")
        return cls(doc["id"], doc["old"], doc["new"], str(cluster) if cluster else None,
                   str(doc.get("started") or ""), {str(k): dict(v) for k, v in phases.items()})


@dataclass
class PhaseResult:
    phase: str
    lines: list[str] = field(default_factory=list)
    #: the Secret manifest (phases `secret` and `final`): for stdout only
    manifest: str | None = None
    exposure: list[dict[str, TreeValue]] = field(default_factory=list)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mark_done(plan: Plan, phase: str, **fields: TreeValue) -> None:
    """Record ``phase`` as complete; a phase run again keeps its first
    timestamp, so an idempotent re-run leaves the plan file unchanged."""
    record = plan.phases.setdefault(phase, {})
    done = record.pop("done", None) or _now()
    record.update(fields)
    record["done"] = done


# --- plans on disk ---------------------------------------------------------------------------


def plan_path(root: Path, plan_id: str) -> Path:
    return root / ROTATIONS_DIR / f"{plan_id}.yaml"


def save(root: Path, plan: Plan) -> Path:
    from ..fileio import atomic_write

    path = plan_path(root, plan.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A plan holds public keys and file names only: ordinary permissions.
    atomic_write(path, plan.to_yaml().encode("utf-8"), mode=0o644)
    return path


def load(root: Path, plan_id: str) -> Plan:
    path = plan_path(root, plan_id)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SopsError(errors.GENERIC, f"no rotation {plan_id!r} ({ROTATIONS_DIR}/{plan_id}.yaml)") from None
    return Plan.from_yaml(data, f"{ROTATIONS_DIR}/{plan_id}.yaml")


def all_plans(root: Path) -> list[Plan]:
    directory = root / ROTATIONS_DIR
    if not directory.is_dir():
        return []
    return [Plan.from_yaml(p.read_bytes(), f"{ROTATIONS_DIR}/{p.name}") for p in sorted(directory.glob("*.yaml"))]


def check_age_recipient(key: str, what: str) -> str:
    from .recipients import detect_type, normalize_key

    key = key.strip()
    if key.upper().startswith("AGE-SECRET-KEY-"):
        raise SopsError(errors.GENERIC, f"{what} is a private key: give the age recipient (public key)")
    try:
        kind = detect_type(key)
    except SopsError:
        kind = ""
    if kind != "age" or not key.startswith("age1"):
        raise SopsError(errors.GENERIC, f"{what} {key[:40]!r} is not an age recipient; rotate-recipient replaces "
                                        "age keys (the keys a Flux Secret holds)")
    return normalize_key(key, "age")


def default_id(old: str, new: str, cluster: str | None) -> str:
    return f"{cluster}-{new[4:12]}" if cluster else f"{old[4:12]}-to-{new[4:12]}"


def start(root: Path, old: str, new: str, *, cluster: str | None = None, plan_id: str | None = None) -> Plan:
    """The plan for OLD -> NEW: the existing one, or a new one (not yet saved)."""
    old = check_age_recipient(old, "OLD")
    new = check_age_recipient(new, "NEW")
    if old == new:
        raise SopsError(errors.GENERIC, "OLD and NEW are the same key")
    for plan in all_plans(root):
        if (plan.old, plan.new) == (old, new) and (plan_id is None or plan.id == plan_id):
            return plan
    if cluster is None:
        cluster = _cluster_holding(root, old)
    plan_id = plan_id or default_id(old, new, cluster)
    if not _ID.match(plan_id):
        raise SopsError(errors.GENERIC, f"invalid rotation id {plan_id!r}: lowercase letters, digits, '.', '_', '-'")
    if plan_path(root, plan_id).exists():
        raise SopsError(errors.GENERIC, f"rotation {plan_id!r} already exists for other keys; choose --id")
    return Plan(plan_id, old, new, cluster, _now())


def _cluster_holding(root: Path, key: str) -> str | None:
    """The one cluster of .sopsflow.yaml whose recipients include ``key``."""
    holders = [c.name for c in _clusters(root) if ("age", key) in c.recipients]
    return holders[0] if len(holders) == 1 else None


def _clusters(root: Path) -> list[Cluster]:
    from .coverage import load_clusters

    path = root / SETTINGS_NAME
    return load_clusters(path.read_bytes() if path.is_file() else None, SETTINGS_NAME)


# --- the phases ---------------------------------------------------------------------------


def run_phase(root: Path, plan: Plan, phase: str, *, key_data: bytes | None = None,
              confirm_cluster: str | None = None, decryption_order: list[str] | None = None,
              secret_name: str = "sops-age", secret_namespace: str = "flux-system",
              data_key: str = "age.agekey") -> PhaseResult:
    """Run ``phase`` (the next one, or one already done: phases are idempotent)."""
    if phase not in PHASES:
        raise SopsError(errors.GENERIC, f"unknown phase {phase!r}: {', '.join(PHASES)}")
    following = plan.next_phase
    if following is not None and PHASES.index(phase) > PHASES.index(following):
        raise SopsError(errors.GENERIC, f"rotation {plan.id}: phase {phase!r} comes after {following!r}, "
                                        f"which is not done yet")
    if phase == "secret" and plan.done("remove"):
        raise SopsError(errors.GENERIC, f"rotation {plan.id}: {plan.old} is retired; the Secret to apply now is "
                                        "the final one (--phase final, with NEW's identity alone)")
    if phase == "add":
        result = _phase_add(root, plan, decryption_order)
    elif phase == "secret":
        result = _phase_secret(plan, key_data, final=False, name=secret_name, namespace=secret_namespace,
                               data_key=data_key)
    elif phase == "confirm":
        result = _phase_confirm(root, plan, confirm_cluster)
    elif phase == "remove":
        result = _phase_remove(root, plan, decryption_order)
    else:
        result = _phase_final(root, plan, key_data, name=secret_name, namespace=secret_namespace,
                              data_key=data_key)
    save(root, plan)
    return result


def _tracked(root: Path) -> list[str]:
    from ..git.repo import TrackedListing

    return TrackedListing(root).paths()


def _sops_config(root: Path) -> Path:
    path = root / CONFIG_NAME
    if not path.is_file():
        raise SopsError(errors.CONFIG_FILE_NOT_FOUND, f"no {CONFIG_NAME} at the repository root {root}")
    return path


def _write_config(path: Path, text: str) -> None:
    from ..config.decoder import parse_config
    from ..fileio import atomic_write

    try:
        config = parse_config(text.encode("utf-8"), str(path), strict=True)
        for rule in config.rules:
            rule.key_groups()
    except SopsError as exc:
        raise SopsError(errors.ERROR_READING_CONFIG, f"the edit would make {CONFIG_NAME} invalid: {exc.message}") from None
    atomic_write(path, text.encode("utf-8"))


def _groups_with(config_path: Path, key: str) -> set[tuple[int, int]]:
    """(rule index, 1-based key group) of every key group of every creation
    rule whose age keys include ``key``."""
    from ..config.decoder import load_config

    places = set()
    for rule in load_config(config_path).rules:
        try:
            specs = rule.key_specs()
        except SopsError:
            continue  # a broken rule: the edit's validation reports it
        for g, group in enumerate(specs):
            if any(s.type_name == "age" and s.identity() == key for s in group):
                places.add((rule.index, g + 1))
    return places


def _phase_add(root: Path, plan: Plan, order: list[str] | None) -> PhaseResult:
    from .recipients import add_recipient

    result = PhaseResult("add")
    config_path = _sops_config(root)
    with_old = _groups_with(config_path, plan.old)
    with_new = _groups_with(config_path, plan.new)
    if not with_old and not with_new:
        raise SopsError(errors.GENERIC, f"{plan.old} is a recipient of no creation rule in {CONFIG_NAME}")
    from ..config.decoder import load_config
    from . import updatekeys as updater

    # Files no rule covers are refused before anything changes.
    _targets(root, plan, load_config(config_path), updater.RuleCache())
    if "add" not in plan.phases:
        # Saved before the first edit, so that --status shows an interrupted phase.
        plan.phases["add"] = {}
        save(root, plan)
    text = config_path.read_text(encoding="utf-8")
    edited = []
    for rule, group in sorted(with_old - with_new):
        text = add_recipient(text, plan.new, key_type="age", rule=rule, group=group).text
        edited.append(f"creation_rules[{rule}] group {group}")
    if edited:
        _write_config(config_path, text)
        result.lines.append(f"{CONFIG_NAME}: added {plan.new} next to {plan.old} in " + ", ".join(edited))
    else:
        result.lines.append(f"{CONFIG_NAME}: every rule listing {plan.old} already lists {plan.new}")
    updated = _update_files(root, plan, rotate=False, order=order, result=result)
    previous = plan.phases.get("add", {})
    _mark_done(plan, "add", rules=previous.get("rules", []) + edited,
               files=sorted(set(previous.get("files", [])) | set(updated)))
    result.lines.append("The cluster keeps its current Secret: every file still opens with OLD.")
    return result


def _targets(root: Path, plan: Plan, config: Config, cache: RuleCache) -> list[tuple[Path, str, bool, CreationRule]]:
    """The tracked SOPS files that hold OLD (or NEW), each with its rule.
    SopsError when a file holding OLD has no rule: it would keep OLD alone."""
    from .coverage import file_groups

    needles = (plan.old.encode(), plan.new.encode())
    targets: list[tuple[Path, str, bool, CreationRule]] = []
    orphans = []
    for rel in _tracked(root):
        if posixpath.basename(rel) == CONFIG_NAME or rel.startswith(ROTATIONS_DIR + "/") or rel == SETTINGS_NAME:
            continue
        path = root / rel
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if not any(n in data for n in needles):
            continue
        found = file_groups(rel, data)
        if found is None:
            continue  # not a SOPS file (a key file, a README naming the key)
        rule = cache.match(config, str(path))
        if rule is None:
            if any(("age", plan.old) in group for group in found[0]):
                orphans.append(rel)
            continue
        targets.append((path, rel, False, rule))
    if orphans:
        raise SopsError(errors.GENERIC, "no creation rule matches " + ", ".join(orphans) + f", which hold(s) {plan.old}: "
                        "a missed file stays decryptable only by the old key; add a rule for it, or "
                        f"`sopsflow rotate -i --add-age {plan.new} FILE` and later `--rm-age {plan.old}`")
    return targets


def _update_files(root: Path, plan: Plan, *, rotate: bool, order: list[str] | None,
                  result: PhaseResult) -> list[str]:
    """updatekeys over the tracked files that hold OLD (or NEW), by the rules
    now in .sops.yaml. Returns the files written; SopsError when any failed."""
    from ..config.decoder import load_config
    from ..stores import store_by_name, store_for_path
    from . import updatekeys as updater

    config = load_config(_sops_config(root))
    cache = updater.RuleCache()
    targets = _targets(root, plan, config, cache)
    stores: dict[str, Store] = {}

    def store_for(path: str) -> Store:
        probe = store_for_path(path)
        if probe.name not in stores:
            indent = config.store_indent("json_binary" if probe.name == "binary" else probe.name)
            stores[probe.name] = probe if indent is None else store_by_name(probe.name, indent=int(indent))
        return stores[probe.name]

    mode = updater.ROTATE_AUTO if rotate else updater.ROTATE_NEVER
    plans, results = updater.update_files(targets, config=config, store_for=store_for, rotate=mode,
                                          decryption_order=order, jobs=1, cache=cache)
    written = [r.plan.display for r in results if r.ok and r.plan.status == updater.STATUS_UPDATE]
    if rotate:
        report = updater.exposure_report(plans, results)
        result.exposure = [{"path": f["path"], "keys": f["keys"]} for f in report["files"]
                           if f["status"] == "updated"]
    for rel in written:
        result.lines.append(f"  {rel}: {'new data key' if rotate else 're-wrapped'}")
    failures = [f"{r.plan.display}: {r.reason}" for r in results if not r.ok]
    failures += [f"{p.display}: {p.reason}" for p in plans if p.status == updater.STATUS_ERROR]
    if failures:
        if rotate:
            _merge_exposure(plan, result.exposure)
            save(root, plan)
        raise SopsError(errors.GENERIC, f"{len(failures)} file(s) not updated (run the phase again once fixed): "
                        + "; ".join(failures))
    if not written:
        result.lines.append("  every file was already up to date")
    return written


def _merge_exposure(plan: Plan, exposure: list[dict[str, TreeValue]]) -> None:
    record = plan.phases.setdefault("remove", {})
    known = {e["path"]: e for e in record.get("exposure", [])}
    for entry in exposure:
        known[entry["path"]] = entry
    record["exposure"] = [known[p] for p in sorted(known)]


def _identities(key_data: bytes | None, plan: Plan, *, final: bool) -> list[str]:
    from .flux import age_recipients

    if key_data is None:
        needed = "NEW's identity" if final else "the identities of OLD and NEW"
        raise SopsError(errors.GENERIC, f"this phase prints the Secret: give {needed} with --key-file")
    try:
        text = key_data.decode("utf-8")
    except UnicodeDecodeError:
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, "the key file is not UTF-8 text") from None
    public = age_recipients(text)
    wanted = [plan.new] if final else [plan.old, plan.new]
    missing = [k for k in wanted if k not in public]
    if missing:
        raise SopsError(errors.GENERIC, "the key file(s) hold no identity for " + ", ".join(missing))
    if final and plan.old in public:
        raise SopsError(errors.GENERIC, f"the final Secret must not hold the retired key {plan.old}; "
                                        "leave its identity out")
    return public


def _phase_secret(plan: Plan, key_data: bytes | None, *, final: bool, name: str, namespace: str,
                  data_key: str) -> PhaseResult:
    from .flux import age_secret_manifest

    public = _identities(key_data, plan, final=final)
    assert key_data is not None
    phase = "final" if final else "secret"
    result = PhaseResult(phase, manifest=age_secret_manifest(key_data, name=name, namespace=namespace,
                                                             data_key=data_key))
    _mark_done(plan, phase, secret=f"{namespace}/{name}", recipients=public)
    return result


def _phase_confirm(root: Path, plan: Plan, cluster: str | None) -> PhaseResult:
    if not cluster:
        raise SopsError(errors.GENERIC, f"apply the Secret of phase `secret` to the cluster, then confirm: "
                                        f"sopsflow rotate-recipient --id {plan.id} --confirm-cluster NAME")
    if plan.cluster and cluster != plan.cluster:
        raise SopsError(errors.GENERIC, f"rotation {plan.id} is for cluster {plan.cluster!r}, not {cluster!r}")
    result = PhaseResult("confirm")
    if _edit_cluster_keys(root, cluster, add=plan.new, after=plan.old):
        result.lines.append(f"{SETTINGS_NAME}: cluster {cluster!r} now lists {plan.new} next to {plan.old}")
    plan.cluster = cluster
    _mark_done(plan, "confirm", cluster=cluster)
    result.lines.append(f"cluster {cluster!r} holds both keys")
    return result


def _phase_remove(root: Path, plan: Plan, order: list[str] | None) -> PhaseResult:
    from .recipients import remove_recipient

    result = PhaseResult("remove")
    _check_ready_to_remove(root, plan)
    config_path = _sops_config(root)
    if _groups_with(config_path, plan.old):
        text = remove_recipient(config_path.read_text(encoding="utf-8"), plan.old, key_type="age").text
        # Recorded before the files change: from here on verify treats OLD as retired.
        plan.phases.setdefault("remove", {})["started"] = _now()
        save(root, plan)
        _write_config(config_path, text)
        result.lines.append(f"{CONFIG_NAME}: removed {plan.old}")
    else:
        plan.phases.setdefault("remove", {}).setdefault("started", _now())
        result.lines.append(f"{CONFIG_NAME}: {plan.old} is already in no rule")
    _update_files(root, plan, rotate=True, order=order, result=result)
    _merge_exposure(plan, result.exposure)
    _mark_done(plan, "remove")
    result.exposure = plan.phases["remove"]["exposure"]
    return result


def _check_ready_to_remove(root: Path, plan: Plan) -> None:
    """Before OLD goes: every tracked SOPS file holding OLD holds NEW in the
    same key group, and the cluster (if .sopsflow.yaml names it) opens every
    file it deploys without OLD."""
    from .coverage import Cluster, deployed_files, evaluate, kustomizations_of

    files = _work_tree_files(root)
    lagging = []
    for f in files:
        if plan.old.encode() not in f.data:
            continue
        groups = _groups_of(f)
        if groups is None:
            continue
        for group in groups[0]:
            if ("age", plan.old) in group and ("age", plan.new) not in group:
                lagging.append(f.path)
                break
    if lagging:
        raise SopsError(errors.GENERIC, f"{', '.join(lagging)} hold(s) {plan.old} without {plan.new}: "
                        f"run phase `add` again (sopsflow rotate-recipient --id {plan.id} --phase add)")
    cluster = next((c for c in _clusters(root) if c.name == plan.cluster), None)
    if cluster is None:
        return
    held = tuple(k for k in cluster.recipients if k != ("age", plan.old)) + (("age", plan.new),)
    after = Cluster(cluster.name, held, cluster.paths, cluster.kustomizations, cluster.secrets)
    blocked = [rel for rel, (groups, threshold) in sorted(deployed_files(after, files, kustomizations_of(files)).items())
               if not evaluate(groups, threshold, held).ok]
    if blocked:
        raise SopsError(errors.GENERIC, f"without {plan.old}, cluster {cluster.name!r} could not decrypt "
                        + ", ".join(blocked) + "; fix their rules and run phase `add` again")


@dataclass
class _File:
    path: str
    data: bytes
    is_symlink: bool = False


def _work_tree_files(root: Path) -> list[_File]:
    out = []
    for rel in _tracked(root):
        try:
            out.append(_File(rel, (root / rel).read_bytes()))
        except OSError:
            continue
    return out


def _groups_of(f: _File) -> tuple[list[list[tuple[str, str]]], int] | None:
    from .coverage import file_groups

    return file_groups(f.path, f.data) if b"sops" in f.data else None


def _phase_final(root: Path, plan: Plan, key_data: bytes | None, *, name: str, namespace: str,
                 data_key: str) -> PhaseResult:
    result = _phase_secret(plan, key_data, final=True, name=name, namespace=namespace, data_key=data_key)
    if plan.cluster and _edit_cluster_keys(root, plan.cluster, remove=plan.old):
        result.lines.append(f"{SETTINGS_NAME}: cluster {plan.cluster!r} no longer lists {plan.old}")
    return result


def _edit_cluster_keys(root: Path, cluster: str, *, add: str | None = None, after: str | None = None,
                       remove: str | None = None) -> bool:
    """Add a key next to ``after`` (or remove one) in the cluster's
    ``recipients`` and ``secrets`` lists of .sopsflow.yaml, comments kept.
    False when the file does not name the cluster or nothing changes."""
    from ..fileio import atomic_write
    from .recipients import _dump, load_round_trip

    path = root / SETTINGS_NAME
    if not path.is_file():
        return False
    y, doc, _exact = load_round_trip(path.read_text(encoding="utf-8"))
    body = (doc or {}).get("clusters", {}).get(cluster) if isinstance(doc, dict) else None
    if not isinstance(body, dict):
        return False
    lists: list[tuple[TreeValue, TreeValue]] = [(body, "recipients")]
    secrets = body.get("secrets")
    if isinstance(secrets, dict):
        lists.extend((secrets, name) for name in secrets)
    changed = False
    for owner, key in lists:
        value = owner.get(key)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            continue
        items = [str(v) for v in value]
        if add is not None and after in items and add not in items:
            if isinstance(owner[key], str):
                owner[key] = [owner[key]]
            owner[key].insert(items.index(after) + 1, add)
            changed = True
        if remove is not None and remove in items and len(items) > 1:
            if isinstance(owner[key], str):
                continue
            del owner[key][items.index(remove)]
            changed = True
    if changed:
        atomic_write(path, _dump(y, doc).encode("utf-8"))
    return changed


# --- status ----------------------------------------------------------------------------


def status_text(plan: Plan) -> str:
    lines = [f"rotation {plan.id}: {plan.old} -> {plan.new}" + (f" (cluster {plan.cluster})" if plan.cluster else "")]
    following = plan.next_phase
    for number, phase in enumerate(PHASES, start=1):
        record = plan.phases.get(phase, {})
        if record.get("done"):
            state = f"done {record['done']}"
        elif phase == following:
            state = "in progress (run it again)" if record else "NEXT"
        else:
            state = "pending"
        lines.append(f"  {number}. {phase:<8} {state:<28} {PHASE_TITLES[phase]}")
    if following is None:
        lines.append(f"  complete: {plan.old} is retired")
    else:
        lines.append(f"  next: {next_command(plan, following)}")
    return "\n".join(lines) + "\n"


def next_command(plan: Plan, phase: str) -> str:
    base = f"sopsflow rotate-recipient --id {plan.id}"
    if phase == "secret":
        return f"{base} --key-file OLD.agekey --key-file NEW.agekey | kubectl apply -f -"
    if phase == "confirm":
        return f"{base} --confirm-cluster {plan.cluster or 'NAME'}"
    if phase == "final":
        return f"{base} --key-file NEW.agekey | kubectl apply -f -"
    return base


# --- what verify reads -----------------------------------------------------------------------


def retired_problems(plan_files: Sequence[tuple[str, bytes]], configs: Sequence[tuple[str, Config | None, bytes]],
                     files: Iterable[TreeFile]) -> list[Problem]:
    """Rules and files that still list a key a plan retired; broken plans."""
    from .coverage import file_groups

    problems = []
    retired: dict[str, Plan] = {}
    for rel, data in plan_files:
        try:
            plan = Plan.from_yaml(data, rel)
        except SopsError as exc:
            problems.append(Problem("rotation-plan-invalid", rel, exc.message, fix=f"restore {rel} from git history"))
            continue
        if plan.retired:
            retired[plan.old] = plan
    if not retired:
        return problems
    for config_rel, config, data in configs:
        if config is None:
            continue
        lines = _rule_lines(data)
        for rule in config.rules:
            try:
                specs = rule.key_specs()
            except SopsError:
                continue
            for key in sorted({s.identity() for group in specs for s in group if s.identity() in retired}):
                plan = retired[key]
                problems.append(Problem(
                    "retired-recipient", config_rel,
                    f"creation_rules[{rule.index}] lists {key}, which rotation {plan.id} retired",
                    fix=f"sopsflow rotate-recipient --id {plan.id} --phase remove",
                    related=(f"{ROTATIONS_DIR}/{plan.id}.yaml",), anchor=f"rule{rule.index}:{key}",
                    line=lines.get(rule.index)))
    for f in files:
        if f.is_symlink or not any(k.encode() in f.data for k in retired):
            continue
        found = file_groups(f.path, bytes(f.data))
        if found is None:
            continue
        for key in sorted({value for group in found[0] for kind, value in group if kind == "age" and value in retired}):
            plan = retired[key]
            problems.append(Problem(
                "retired-recipient", f.path, f"still encrypted for {key}, which rotation {plan.id} retired",
                fix=f"sopsflow rotate-recipient --id {plan.id} --phase remove",
                related=(f"{ROTATIONS_DIR}/{plan.id}.yaml",), anchor=key))
    return problems


def progress_notes(plan_files: Sequence[tuple[str, bytes]]) -> list[str]:
    """One line per rotation not finished yet (broken plans are findings)."""
    notes = []
    for rel, data in plan_files:
        try:
            plan = Plan.from_yaml(data, rel)
        except SopsError:
            continue
        following = plan.next_phase
        if following is not None:
            notes.append(f"rotation {plan.id} in progress: phase {PHASES.index(following) + 1} ({following}) is next "
                         f"(sopsflow rotate-recipient --id {plan.id} --status)")
    return notes


def _rule_lines(data: bytes) -> dict[int, int]:
    from .verify import _rule_lines as lines

    return lines(data)
