"""Cluster key coverage: can each cluster open every SOPS file it deploys?

``.sopsflow.yaml`` names each cluster's decryption keys - public halves only -
and what it deploys::

    clusters:
      staging:
        recipients:              # the keys the cluster holds: age recipients,
          - age1f5n33...         # PGP fingerprints, AWS KMS ARNs
        paths:                   # globs of files it deploys (as in `allow.paths`)
          - apps/staging/
        kustomizations:          # Flux Kustomizations it applies: FILE or FILE#NAME
          - clusters/staging/    # (FILE a glob: every Kustomization in those files)
        secrets:                 # optional: the public half of a decryption Secret,
          sops-age: [age1f5n...] # by name (the `# Recipients` lines that
                                 # `sopsflow flux age-secret` prints)

The check is keyless: it reads the key groups in each file's metadata and
evaluates them as sops does - a group opens when the cluster holds any of its
keys, the file opens when the open groups reach the Shamir threshold (every
group when the file records none). A Flux Kustomization deploys the files
under its ``spec.path`` and those its kustomization files reach elsewhere
(``resources: [../base]``, generator sources); one whose ``decryption.secretRef`` names a Secret in
``secrets`` is checked against that Secret's keys (plus the cluster's cloud
KMS keys, which the controller reaches through its own identity), because
that is all kustomize-controller uses for it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .. import errors
from ..errors import SopsError
from .policy import USAGE_ERROR

if TYPE_CHECKING:
    from ..config.keyspecs import KeySpec
    from ..config.rules import Config, CreationRule
    from ..keys.base import MasterKey
    from ..tree import TreeValue

SETTINGS_KEY = "clusters"
_CLUSTER_KEYS = ("recipients", "paths", "kustomizations", "secrets")
#: Key types the controller reaches through its own cloud identity, not a Secret.
_CLOUD_TYPES = frozenset({"kms", "gcp_kms", "azure_kv", "hckms", "hc_vault"})


@dataclass(frozen=True)
class Cluster:
    name: str
    #: (key type, normalised identity) of each key the cluster holds
    recipients: tuple[tuple[str, str], ...]
    paths: tuple[str, ...] = ()
    kustomizations: tuple[str, ...] = ()
    secrets: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def keys(self) -> list[str]:
        return [value for _kind, value in self.recipients]


@dataclass(frozen=True)
class Problem:
    """A coverage finding, as verify reports it."""

    kind: str
    path: str
    message: str
    severity: str = "error"
    fix: str | None = None
    related: tuple[str, ...] = ()
    anchor: str = ""
    line: int | None = None


@dataclass(frozen=True)
class Opening:
    """How a file's key groups fare against a set of held keys."""

    threshold: int
    groups: int
    open_groups: tuple[int, ...]
    #: 0-based indexes of the groups the holder cannot open
    closed_groups: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return len(self.open_groups) >= self.threshold


class KustomizationLike(Protocol):
    path: str
    name: str
    directory: str
    secret_name: str | None


class TreeFile(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def data(self) -> bytes: ...
    @property
    def is_symlink(self) -> bool: ...


# --- settings ------------------------------------------------------------------------------


def classify_key(key: str) -> tuple[str, str]:
    """(type, normalised identity) of a public key; SopsError for anything else.
    A private key is refused without echoing it."""
    text = key.strip()
    if text.upper().startswith("AGE-SECRET-KEY-") or "PRIVATE KEY" in text:
        raise SopsError(errors.GENERIC, "a private key: list the public key (recipient) only")
    if text.startswith("age1"):
        return "age", text
    compact = text.replace(" ", "")
    if len(compact) in (16, 40) and all(c in "0123456789abcdefABCDEF" for c in compact):
        return "pgp", compact.upper()
    if text.startswith("arn:aws") and ":kms:" in text:
        return "kms", _kms_arn(text)
    if text.startswith("projects/") and "/cryptoKeys/" in text:
        return "gcp_kms", text
    if text.startswith("https://") and ".vault.azure.net/keys/" in text:
        return "azure_kv", text
    if text.startswith(("http://", "https://")) and "/keys/" in text:
        return "hc_vault", text
    raise SopsError(errors.GENERIC, f"{text[:40]!r} is not a public key sopsflow can evaluate "
                                    "(age recipient, PGP fingerprint, KMS ARN or key URL)")


def _kms_arn(identity: str) -> str:
    """The ARN of a KMS identity (``arn[+role][|context][|profile]``)."""
    return identity.split("|", 1)[0].split("+", 1)[0]


def parse_clusters(doc: TreeValue, source: str) -> list[Cluster]:
    """The ``clusters`` section of a parsed ``.sopsflow.yaml``; SopsError(1)
    when it is malformed (a typo must not silently check nothing)."""
    if not isinstance(doc, dict) or doc.get(SETTINGS_KEY) is None:
        return []
    section = doc[SETTINGS_KEY]
    if not isinstance(section, dict):
        raise SopsError(errors.GENERIC, f"{source}: `clusters` must map each cluster name to its keys and paths")
    out = []
    for name, body in section.items():
        where = f"clusters.{name}"
        if not isinstance(body, dict):
            raise SopsError(errors.GENERIC, f"{source}: `{where}` must be a mapping")
        unknown = sorted(str(k) for k in body if k not in _CLUSTER_KEYS)
        if unknown:
            raise SopsError(errors.GENERIC, f"{source}: unknown key(s) in `{where}`: {', '.join(unknown)}")
        recipients = _keys(body.get("recipients"), f"{where}.recipients", source)
        if not recipients:
            raise SopsError(errors.GENERIC, f"{source}: `{where}.recipients` must name at least one public key")
        paths = _strings(body.get("paths"), f"{where}.paths", source)
        kustomizations = _strings(body.get("kustomizations"), f"{where}.kustomizations", source)
        if not paths and not kustomizations:
            raise SopsError(errors.GENERIC, f"{source}: `{where}` deploys nothing: give `paths` or `kustomizations`")
        secrets_raw = body.get("secrets") or {}
        if not isinstance(secrets_raw, dict):
            raise SopsError(errors.GENERIC, f"{source}: `{where}.secrets` must map a Secret name to its public keys")
        secrets = {str(k): tuple(_keys(v, f"{where}.secrets.{k}", source)) for k, v in secrets_raw.items()}
        from .policy import check_globs

        check_globs([*paths, *(k.split("#", 1)[0] for k in kustomizations)], source)
        out.append(Cluster(str(name), tuple(recipients), tuple(paths), tuple(kustomizations), secrets))
    return out


def load_clusters(data: bytes | None, source: str) -> list[Cluster]:
    if data is None:
        return []
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(data, Loader=loader)  # noqa: S506 - a safe loader
    except (yaml.YAMLError, ValueError, RecursionError):
        raise SopsError(errors.GENERIC, f"{source}: not valid YAML") from None
    return parse_clusters(doc, source)


def _keys(value: TreeValue, where: str, source: str) -> list[tuple[str, str]]:
    out = []
    for i, text in enumerate(_strings(value, where, source)):
        try:
            out.append(classify_key(text))
        except SopsError as exc:
            raise SopsError(errors.GENERIC, f"{source}: `{where}[{i}]`: {exc.message}") from None
    return out


def _strings(value: TreeValue, where: str, source: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SopsError(errors.GENERIC, f"{source}: `{where}` must be a list of strings")
    return list(value)


# --- evaluation ----------------------------------------------------------------------------


def key_of(master: MasterKey) -> tuple[str, str]:
    """(type, normalised identity) of a key recorded in a file's metadata."""
    kind = master.type_name
    identity = master.identity()
    if kind == "pgp":
        return kind, identity.replace(" ", "").upper()
    if kind == "kms":
        return kind, _kms_arn(identity)
    return kind, identity


def _holds(held: Iterable[tuple[str, str]], key: tuple[str, str]) -> bool:
    kind, value = key
    for h_kind, h_value in held:
        if h_kind != kind:
            continue
        if h_value == value:
            return True
        # a 16-digit PGP key ID names the fingerprint it ends
        if kind == "pgp" and (value.endswith(h_value) or h_value.endswith(value)):
            return True
    return False


def evaluate(groups: Sequence[Sequence[tuple[str, str]]], threshold: int,
             held: Iterable[tuple[str, str]]) -> Opening:
    """Which key groups ``held`` opens, and whether that reaches the threshold
    (one group: it must open; several: ``threshold`` of them, all when 0)."""
    held = list(held)
    open_groups = tuple(i for i, group in enumerate(groups) if any(_holds(held, k) for k in group))
    closed = tuple(i for i in range(len(groups)) if i not in open_groups)
    required = 1 if len(groups) <= 1 else (threshold or len(groups))
    return Opening(required, len(groups), open_groups, closed)


def file_groups(path: str, data: bytes) -> tuple[list[list[tuple[str, str]]], int] | None:
    """The key groups and threshold recorded in a SOPS file; None when it has
    no loadable metadata (the audit reports that)."""
    from ..metadata import Metadata
    from ..stores import store_for_path

    try:
        _branches, raw = store_for_path(path).load_encrypted(data)
        if raw is None:
            return None
        meta = Metadata.from_dict(raw)
    except Exception:  # broken metadata is the audit's finding (broken-sops), not ours
        return None
    return [[key_of(k) for k in group] for group in meta.key_groups], int(meta.shamir_threshold or 0)


def _sops_files(files: Iterable[TreeFile]) -> dict[str, tuple[list[list[tuple[str, str]]], int]]:
    sops = {}
    for f in files:
        if f.is_symlink or b"sops" not in f.data:
            continue
        groups = file_groups(f.path, bytes(f.data))
        if groups is not None:
            sops[f.path] = groups
    return sops


_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
#: kustomization.yaml fields that name files or directories kustomize reads
_KUSTOMIZE_REFS = ("resources", "components", "bases", "patchesStrategicMerge", "crds")


def kustomize_reads(tree: Mapping[str, bytes], directory: str, seen: set[str] | None = None) -> set[str]:
    """The files a kustomize build of ``directory`` may read: everything under
    it, plus - through its kustomization file, recursively - the local
    resources, components and generator sources it names elsewhere in the
    tree (an overlay's ``../base``). Remote references are left out."""
    import yaml

    seen = set() if seen is None else seen
    if directory in seen:
        return set()
    seen.add(directory)
    out = {p for p in tree if _under(p, directory)}
    for name in _KUSTOMIZATION_FILES:
        data = tree.get(posixpath.join(directory, name) if directory else name)
        if data is None:
            continue
        try:
            doc = yaml.safe_load(data)
        except (yaml.YAMLError, ValueError, RecursionError):
            break
        if not isinstance(doc, dict):
            break
        refs = [v for key in _KUSTOMIZE_REFS for v in (doc.get(key) or []) if isinstance(v, str)]
        for key in ("secretGenerator", "configMapGenerator"):
            for gen in doc.get(key) or []:
                if isinstance(gen, dict):
                    refs += [v.split("=", 1)[-1] for f in ("files", "envs") for v in (gen.get(f) or [])
                             if isinstance(v, str)]
        for ref in refs:
            if "://" in ref or ref.startswith(("git@", "github.com/")):
                continue
            target = posixpath.normpath(posixpath.join(directory, ref) if directory else ref)
            if target == ".." or target.startswith("../"):
                continue  # outside the repository
            if target in tree:
                out.add(target)
            else:
                out |= kustomize_reads(tree, "" if target == "." else target, seen)
        break
    return out


def _deployed(cluster: Cluster, sops_paths: Sequence[str], kustomizations: Sequence[KustomizationLike],
              tree: Mapping[str, bytes] | None = None) -> tuple[dict[str, KustomizationLike | None], list[str]]:
    """File -> the Kustomization that deploys it (None: a ``paths`` glob), and
    the ``kustomizations`` entries that match nothing."""
    from .policy import glob_match

    found: dict[str, KustomizationLike | None] = {}
    for rel in sops_paths:
        if any(glob_match(p, rel) for p in cluster.paths):
            found[rel] = None
    unmatched = []
    for entry in cluster.kustomizations:
        pattern, _, name = entry.partition("#")
        chosen = [k for k in kustomizations if glob_match(pattern, k.path) and (not name or k.name == name)]
        if not chosen:
            unmatched.append(entry)
        for ks in chosen:
            reads = kustomize_reads(tree, ks.directory) if tree is not None else None
            for rel in sops_paths:
                deploys = rel in reads if reads is not None else _under(rel, ks.directory)
                if deploys and found.get(rel) is None:
                    found[rel] = ks
    return found, unmatched


def _under(path: str, directory: str) -> bool:
    return directory in ("", ".") or path.startswith(directory.rstrip("/") + "/")


def check(clusters: Sequence[Cluster], files: Iterable[TreeFile],
          kustomizations: Sequence[KustomizationLike], settings_path: str,
          rule_of: Callable[[str], CreationRule | None] | None = None) -> list[Problem]:
    """Every way a configured cluster fails to open a file it deploys."""
    if not clusters:
        return []
    files = list(files)
    sops = _sops_files(files)
    tree = {f.path: bytes(f.data) for f in files if not f.is_symlink}
    problems: list[Problem] = []
    for cluster in clusters:
        deployed, unmatched = _deployed(cluster, sorted(sops), kustomizations, tree)
        for entry in unmatched:
            problems.append(Problem(
                "cluster-config", settings_path,
                f"clusters.{cluster.name}.kustomizations: {entry!r} names no Flux Kustomization of the tree",
                "error", fix=f"fix the entry in {settings_path} (FILE or FILE#NAME of a Kustomization)",
                anchor=f"{cluster.name}:{entry}"))
        for rel, ks in sorted(deployed.items()):
            groups, threshold = sops[rel]
            rule = rule_of(rel) if rule_of is not None else None
            problems.extend(_judge(cluster, rel, groups, threshold, ks, settings_path, rule))
    return problems


def _judge(cluster: Cluster, rel: str, groups: list[list[tuple[str, str]]], threshold: int,
           ks: KustomizationLike | None, settings_path: str, rule: CreationRule | None) -> list[Problem]:
    out = []
    related = (settings_path, *((ks.path,) if ks is not None else ()))
    opening = evaluate(groups, threshold, cluster.recipients)
    if not opening.ok:
        out.append(Problem(
            "cluster-cannot-decrypt", rel,
            f"cluster {cluster.name!r} cannot decrypt this file: {_why(opening, groups)}",
            fix=_fix(cluster.keys(), opening, rel, rule), related=related, anchor=cluster.name))
    if ks is not None and ks.secret_name and cluster.secrets:
        public = cluster.secrets.get(ks.secret_name)
        if public is None:
            out.append(Problem(
                "flux-secret-unknown", ks.path,
                f"Flux Kustomization {ks.name!r} decrypts with Secret {ks.secret_name!r}, whose public half "
                f"clusters.{cluster.name}.secrets does not give", "warning",
                fix=f"add `{ks.secret_name}: [age1...]` to clusters.{cluster.name}.secrets in {settings_path}",
                related=(settings_path, rel), anchor=f"{cluster.name}:{ks.name}:{ks.secret_name}"))
        else:
            held = [*public, *(k for k in cluster.recipients if k[0] in _CLOUD_TYPES)]
            by_secret = evaluate(groups, threshold, held)
            if not by_secret.ok:
                keys = [value for _kind, value in public]
                out.append(Problem(
                    "flux-secret-cannot-decrypt", rel,
                    f"Flux Kustomization {ks.name!r} ({ks.path}) of cluster {cluster.name!r} decrypts with "
                    f"Secret {ks.secret_name!r}, whose keys cannot decrypt this file: {_why(by_secret, groups)}",
                    fix=_fix(keys, by_secret, rel, rule, secret=ks.secret_name),
                    related=(*related, ks.path), anchor=f"{cluster.name}:{ks.name}"))
    return out


def _why(opening: Opening, groups: list[list[tuple[str, str]]]) -> str:
    def shown(group: list[tuple[str, str]]) -> str:
        names = [value for _kind, value in group]
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    if opening.groups <= 1:
        return f"it holds none of the file's keys ({shown(groups[0]) if groups else 'none'})"
    closed = "; ".join(f"group {i + 1}: {shown(groups[i])}" for i in opening.closed_groups)
    return (f"it opens {len(opening.open_groups)} of {opening.groups} key groups, the file needs "
            f"{opening.threshold} (Shamir threshold); no key for {closed}")


def _fix(keys: list[str], opening: Opening, rel: str, rule: CreationRule | None, secret: str | None = None) -> str:
    """What to do: re-wrap the file when its rule already gives the holder
    enough keys (the file is stale), else add a key to the rule."""
    if rule is not None and _rule_opens(rule, keys, opening):
        return f"sopsflow updatekeys {rel} (its creation rule already names the keys it lacks)"
    key = keys[0] if keys else "the cluster's key"
    missing = opening.threshold - len(opening.open_groups)
    where = "its creation rule" if opening.groups <= 1 else (
        f"{missing} more key group(s) of its creation rule (group "
        + ", ".join(str(i + 1) for i in opening.closed_groups) + ")")
    holder = f"Secret {secret!r}" if secret else "the cluster"
    index = getattr(rule, "index", None)
    rule_flag = f"--rule {index}" if index is not None else "--rule N"
    group_flag = f" --group {opening.closed_groups[0] + 1}" if opening.groups > 1 and opening.closed_groups else ""
    return (f"add {key} to {where} (`sopsflow recipients add {key} {rule_flag}{group_flag}`), then "
            f"`sopsflow updatekeys {rel}`; "
            f"or give {holder} a key the file is encrypted for")


def _rule_opens(rule: CreationRule, keys: list[str], opening: Opening) -> bool:
    """Whether a file encrypted by ``rule`` would open with ``keys``."""
    try:
        specs = rule.key_specs()
    except SopsError:
        return False
    try:
        held = [classify_key(k) for k in keys]
    except SopsError:
        return False
    groups = [[_spec_key(s) for s in group] for group in specs]
    return evaluate(groups, getattr(rule, "shamir_threshold", 0) or 0, held).ok


def _spec_key(spec: KeySpec) -> tuple[str, str]:
    identity = spec.identity()
    if spec.type_name == "pgp":
        return "pgp", identity.replace(" ", "").upper()
    if spec.type_name == "kms":
        return "kms", _kms_arn(identity)
    return spec.type_name, identity


def deployed_files(cluster: Cluster, files: Iterable[TreeFile],
                   kustomizations: Sequence[KustomizationLike]) -> dict[str, tuple[list[list[tuple[str, str]]], int]]:
    """The SOPS files ``cluster`` deploys, with their key groups and threshold."""
    files = list(files)
    sops = _sops_files(files)
    tree = {f.path: bytes(f.data) for f in files if not f.is_symlink}
    deployed, _unmatched = _deployed(cluster, sorted(sops), kustomizations, tree)
    return {rel: sops[rel] for rel in deployed}


def kustomizations_of(files: Sequence[TreeFile]) -> list[KustomizationLike]:
    """The Flux Kustomizations in ``files`` (verify's parser)."""
    from .verify import _FluxManifests

    return list(_FluxManifests(files).kustomizations())


def check_tree(settings: bytes | None, files: Sequence[TreeFile], configs: Sequence[tuple[str, Config | None, bytes]],
               settings_path: str, rule_of: Callable[[str], CreationRule | None] | None = None,
               ) -> tuple[list[Problem], list[str], list[str]]:
    """verify's entry: the coverage of the clusters ``settings`` names and the
    keys the rotation plans of the tree retired. Returns (problems, checks
    run, notes on rotations still in progress)."""
    from .rotate_recipient import ROTATIONS_DIR, progress_notes, retired_problems

    checks = []
    try:
        clusters = load_clusters(settings, settings_path)
    except SopsError as exc:
        raise SopsError(USAGE_ERROR, exc.message) from None
    problems: list[Problem] = []
    if clusters:
        checks.append("clusters")
        problems.extend(check(clusters, files, kustomizations_of(files), settings_path, rule_of))
    plans = [(f.path, bytes(f.data)) for f in files
             if f.path.startswith(ROTATIONS_DIR + "/") and f.path.endswith(".yaml") and not f.is_symlink]
    if plans:
        checks.append("rotations")
        problems.extend(retired_problems(plans, configs, files))
    return problems, checks, progress_notes(plans) if plans else []
