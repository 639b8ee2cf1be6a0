"""AWS Secrets Manager and SSM Parameter Store destinations for ``publish``.

They are sopsflow's own, so they live in ``.sopsflow.yaml`` (next to the
``.sops.yaml`` in use), never in ``.sops.yaml``:

```yaml
publish:
  - path_regex: '^production/.*\\.yaml$'   # searched in the path relative to this file's directory
    aws_secretsmanager:
      name: "prod/{stem}"                  # one secret per file, holding the JSON of its values
      per_key: false                       # true: one secret per top-level key; name needs {key}
      kms_key_id: alias/prod-secrets       # optional (the account's default key otherwise)
      region: eu-west-1                    # optional (the SDK's chain otherwise)
    aws_ssm:
      name: "/prod/{stem}/{key}"           # one SecureString per top-level key
      kms_key_id: alias/prod-params        # optional
```

Name templates take ``{path}`` (the file's path relative to ``.sopsflow.yaml``),
``{dir}``, ``{file}``, ``{stem}`` (file name without its last extension) and,
per key, ``{key}``. Credentials and endpoints come from boto3's standard chain.
"""

from __future__ import annotations

import json
import posixpath
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import errors
from ..errors import SopsError

if TYPE_CHECKING:
    from ..config.keyspecs import KeySpec
    from ..config.rules import CreationRule
    from ..metadata import Metadata
    from ..tree import TreeValue
    from .publish import Json, Source

SETTINGS_FILE = ".sopsflow.yaml"
_FIELDS = {"path", "dir", "file", "stem", "key"}
_RULE_KEYS = ("path_regex", "aws_secretsmanager", "aws_ssm")
_DEST_KEYS = ("name", "per_key", "kms_key_id", "region")


def _fail(problem: str) -> SopsError:
    return SopsError(errors.GENERIC, f"{SETTINGS_FILE}: {problem}")


def render(template: str, relative: str, key: str | None = None) -> str:
    from .publish import go_ext

    directory, file = posixpath.split(relative)
    ext = go_ext(file)
    values = {"path": relative, "dir": directory or ".", "file": file, "stem": file[: len(file) - len(ext)] if ext
              else file, "key": key if key is not None else "{key}"}
    return template.format_map(values)


def _check_template(template: str, where: str, per_key: bool) -> None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise _fail(f"`{where}`: bad name template: {exc}") from None
    unknown = sorted(names - _FIELDS)
    if unknown:
        raise _fail(f"`{where}`: unknown field(s) {', '.join('{' + n + '}' for n in unknown)} in the name template")
    if per_key and "key" not in names:
        raise _fail(f"`{where}`: a per-key name template needs {{key}}")
    if not per_key and "key" in names:
        raise _fail(f"`{where}`: {{key}} is only for per-key secrets (per_key: true)")


@dataclass
class AwsRule:
    path_regex: str
    destinations: list[AwsDestination]
    regex: Any = field(default=None, repr=False)

    def matches(self, relative: str) -> bool:
        return not self.path_regex or self.regex.search(relative) is not None


def load_rules(directory: Path) -> list[AwsRule]:
    """The ``publish`` rules of ``directory/.sopsflow.yaml`` ([] without the file or section)."""
    import yaml

    try:
        data = (directory / SETTINGS_FILE).read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise _fail(f"cannot read: {exc.strerror or exc}") from None
    try:
        doc = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        raise _fail("not valid YAML") from None
    if not isinstance(doc, dict) or doc.get("publish") is None:
        return []
    items = doc["publish"]
    if not isinstance(items, list):
        raise _fail("`publish` must be a list of rules")
    return [_rule(item, f"publish[{i}]") for i, item in enumerate(items)]


def _rule(item: TreeValue, where: str) -> AwsRule:
    from ..config.rules import compile_go_regex

    if not isinstance(item, dict):
        raise _fail(f"`{where}` must be a mapping")
    unknown = sorted(str(k) for k in item if k not in _RULE_KEYS)
    if unknown:
        raise _fail(f"unknown key(s) in `{where}`: {', '.join(unknown)}")
    path_regex = item.get("path_regex") or ""
    if not isinstance(path_regex, str):
        raise _fail(f"`{where}.path_regex` must be a string")
    regex = None
    if path_regex:
        regex, problem = compile_go_regex(path_regex)
        if problem:
            raise _fail(f"`{where}.path_regex`: {problem}")
    destinations: list[AwsDestination] = []
    for kind in ("aws_secretsmanager", "aws_ssm"):
        if item.get(kind) is not None:
            destinations.append(_destination(kind, item[kind], f"{where}.{kind}"))
    if not destinations:
        raise _fail(f"`{where}` names no destination (aws_secretsmanager or aws_ssm)")
    return AwsRule(path_regex, destinations, regex)


def _destination(kind: str, spec: TreeValue, where: str) -> AwsDestination:
    if not isinstance(spec, dict):
        raise _fail(f"`{where}` must be a mapping")
    unknown = sorted(str(k) for k in spec if k not in _DEST_KEYS)
    if unknown:
        raise _fail(f"unknown key(s) in `{where}`: {', '.join(unknown)}")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(f"`{where}.name` (a name template) is required")
    per_key = spec.get("per_key", kind == "aws_ssm")
    if not isinstance(per_key, bool):
        raise _fail(f"`{where}.per_key` must be true or false")
    if kind == "aws_ssm" and not per_key:
        raise _fail(f"`{where}`: SSM parameters are per key (per_key: true)")
    for opt in ("kms_key_id", "region"):
        if spec.get(opt) is not None and not isinstance(spec.get(opt), str):
            raise _fail(f"`{where}.{opt}` must be a string")
    _check_template(name, f"{where}.name", per_key)
    cls = SecretsManager if kind == "aws_secretsmanager" else SsmParameters
    return cls(name, per_key, spec.get("kms_key_id") or "", spec.get("region") or "")


# --- the stores ------------------------------------------------------------------------


def _text(value: Json) -> str:
    """A value as stored text: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _untext(text: str, like: Json) -> Json:
    if isinstance(like, str):
        return text
    try:
        value: Json = json.loads(text)
    except ValueError:
        return text
    return value


def _reason(exc: Exception) -> str:
    code = _code(exc)
    if code:
        # Only the error code: AWS validation messages may quote request
        # fields ("Value '...' at 'value' failed to satisfy constraint").
        operation = getattr(exc, "operation_name", "")
        return f"{code} ({operation})" if operation else code
    # Connection and credential errors name the endpoint or the missing setting.
    text = str(exc).strip().splitlines()
    return (text[0] if text else "") or type(exc).__name__


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


@dataclass
class AwsDestination:
    template: str
    per_key: bool
    kms_key_id: str = ""
    region: str = ""
    _client: Any = field(default=None, repr=False)
    service = ""

    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.session.Session(region_name=self.region or None).client(self.service)
        return self._client

    def label(self) -> str:
        where = f" ({self.region})" if self.region else ""
        return f"{self.service}{where} {self.template}"

    def target(self, name: str) -> str:
        return name

    def read(self, name: str, keys: list[str], like: dict[str, Json]) -> dict[str, Json] | None:
        from .publish import DestinationError

        try:
            if not self.per_key:
                text = self._get(name)
                if text is None:
                    return None
                try:
                    value = json.loads(text)
                except ValueError:
                    return {}  # not JSON: every key differs, so the secret is rewritten
                return value if isinstance(value, dict) else {}
            found: dict[str, Json] = {}
            for key in keys:
                text = self._get(name.replace("{key}", key))
                if text is not None:
                    found[key] = _untext(text, like[key])
            return found or None
        except Exception as exc:
            raise DestinationError(f"cannot read {name}: {_reason(exc)}") from None

    def write(self, name: str, data: dict[str, Json], keys: list[str], tags: dict[str, str],
              exists: set[str] | None) -> None:
        from .publish import DestinationError

        try:
            if not self.per_key:
                self._put(name, _text(data), tags, exists is not None)
                return
            for key in keys:
                self._put(name.replace("{key}", key), _text(data[key]), tags, key in (exists or set()))
        except Exception as exc:
            raise DestinationError(f"cannot write {name}: {_reason(exc)}") from None

    def _get(self, name: str) -> str | None:
        raise NotImplementedError

    def _put(self, name: str, text: str, tags: dict[str, str], exists: bool) -> None:
        raise NotImplementedError


class SecretsManager(AwsDestination):
    service = "secretsmanager"

    def _get(self, name: str) -> str | None:
        try:
            response = self.client().get_secret_value(SecretId=name)
        except Exception as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
        return str(response.get("SecretString", ""))

    def _put(self, name: str, text: str, tags: dict[str, str], exists: bool) -> None:
        client = self.client()
        if not exists:
            extra = {"KmsKeyId": self.kms_key_id} if self.kms_key_id else {}
            client.create_secret(Name=name, SecretString=text, Tags=_tag_list(tags), **extra)
            return
        client.put_secret_value(SecretId=name, SecretString=text)
        if tags:
            client.tag_resource(SecretId=name, Tags=_tag_list(tags))


class SsmParameters(AwsDestination):
    service = "ssm"

    def _get(self, name: str) -> str | None:
        try:
            response = self.client().get_parameter(Name=name, WithDecryption=True)
        except Exception as exc:
            if _code(exc) == "ParameterNotFound":
                return None
            raise
        return str(response["Parameter"]["Value"])

    def _put(self, name: str, text: str, tags: dict[str, str], exists: bool) -> None:
        client = self.client()
        extra = {"KeyId": self.kms_key_id} if self.kms_key_id else {}
        if not exists:
            client.put_parameter(Name=name, Value=text, Type="SecureString", Tags=_tag_list(tags), **extra)
            return
        # SSM refuses Tags together with Overwrite, so the tags follow separately.
        client.put_parameter(Name=name, Value=text, Type="SecureString", Overwrite=True, **extra)
        if tags:
            client.add_tags_to_resource(ResourceType="Parameter", ResourceId=name, Tags=_tag_list(tags))


def source_tags(directory: Path, relative: str) -> dict[str, str]:
    """Tags naming the source file and, inside a git repository, the HEAD commit."""
    tags = {"sopsflow:source": relative}
    try:
        import pygit2

        found = pygit2.discover_repository(str(directory))
        if found:
            repo = pygit2.Repository(found)
            if not repo.head_is_unborn:
                tags["sopsflow:commit"] = str(repo.head.target)
    except Exception:  # noqa: S110 - no repository or no HEAD: the commit tag is left out
        pass
    return tags


# --- S3, as sops' destination_rules define it ------------------------------------------


@dataclass
class S3Object:
    """An ``s3_bucket`` destination: the object ``s3://bucket/<prefix><name>``
    holds the file still encrypted. With a ``recreation_rule`` that names
    keys, sops re-encrypts the decrypted tree for those keys (a new data key,
    metadata holding only the key groups, the Shamir threshold and the rule's
    suffix option); without one it uploads the file's bytes unchanged. The
    prefix is used as written: sops adds no "/"."""

    bucket: str
    prefix: str
    recreation: CreationRule | None = None
    _client: Any = field(default=None, repr=False)

    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.session.Session().client("s3")
        return self._client

    def label(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def target(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def key_specs(self) -> list[list[KeySpec]]:
        """The recreation rule's key groups; [] when the file is sent as it is
        (sops re-encrypts only when the first group holds a key)."""
        if self.recreation is None:
            return []
        groups = self.recreation.key_specs()
        return groups if groups and groups[0] else []

    def expected_recipients(self, source: Source) -> list[list[str]]:
        specs = self.key_specs()
        if specs:
            return [sorted(spec.identity() for spec in group) for group in specs]
        return recipients(source.doc.metadata)

    def payload(self, source: Source) -> bytes:
        """The bytes sops would upload. Re-encryption makes a new data key and
        IVs on every call, so this runs only when the object is written."""
        from ..metadata import Metadata
        from ..operations import encrypt_document, new_data_key, wrap_keys

        if not self.key_specs():
            return source.raw
        assert self.recreation is not None
        meta = Metadata(key_groups=self.recreation.key_groups(), shamir_threshold=self.recreation.shamir_threshold)
        # sops carries over the two suffix options only: a rule's regex
        # options, mac_only_encrypted and the file's own selection are
        # dropped, so every other value is encrypted.
        meta.set_selection({k: v for k, v in self.recreation.selection.items()
                            if k in ("unencrypted_suffix", "encrypted_suffix")})
        data_key = new_data_key()
        wrap_keys(meta, data_key)
        return encrypt_document(source.store, source.doc.branches, meta, data_key)

    # The value-level interface of the other destinations does not apply: the
    # planner compares an S3 object as a whole document (publish._plan_s3).
    def read(self, name: str, keys: list[str], like: dict[str, Json]) -> dict[str, Json] | None:
        raise TypeError("an S3 object is compared as a document")

    def write(self, name: str, data: dict[str, Json], keys: list[str], tags: dict[str, str],
              exists: set[str] | None) -> None:
        raise TypeError("an S3 object is written as a document")

    def get(self, name: str) -> bytes | None:
        from .publish import DestinationError

        try:
            response = self.client().get_object(Bucket=self.bucket, Key=self.prefix + name)
            body: bytes = response["Body"].read()
            return body
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise DestinationError(f"cannot read {self.target(name)}: {_reason(exc)}") from None

    def put(self, name: str, body: bytes) -> None:
        from .publish import DestinationError

        try:
            self.client().put_object(Bucket=self.bucket, Key=self.prefix + name, Body=body)
        except Exception as exc:
            raise DestinationError(f"cannot write {self.target(name)}: {_reason(exc)}") from None


def recipients(meta: Metadata) -> list[list[str]]:
    """Each key group's key identities, sorted: what decides who can read a file."""
    return [sorted(key.identity() for key in group) for group in meta.key_groups]
