"""Files as sops 3.13 writes them, read by sopsflow (and by the pinned binary).

No sops 3.13 runs here, so each test takes what the pinned binary writes and
changes exactly what the named upstream change changed in the bytes on disk,
as read from the sops source at tags v3.12.0 to v3.13.2. The encrypted tree,
the data key and the MAC stay the same: only the rendering differs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from sopsflow.keys.age import AgeKey
from sopsflow.operations import encrypt_new
from sopsflow.stores import store_for_path
from sopsflow.tree import TreeMap

from ..conftest import base_env, run_sops, run_sopsflow, sops_encrypted_copy
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT

_COMMENT_LINE = re.compile(r"^(\s*)(?:- )?(ENC\[AES256_GCM,[^\]]*type:comment\])\s*$|^(\s*)#(ENC\[[^\]]*type:comment\])\s*$")


def _env() -> dict[str, str]:
    return base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))


def _both_read(path: Path) -> bytes:
    ours = run_sopsflow(["decrypt", str(path)], env=_env())
    theirs = run_sops(["decrypt", str(path)], env=_env())
    assert ours.returncode == 0, ours.stderr
    assert theirs.returncode == 0, theirs.stderr
    assert ours.stdout == theirs.stdout
    return ours.stdout


def test_yaml_inline_comments_of_sops_3_13(tmp_path: Path) -> None:
    """sops 3.13.0, "Preserve YAML inline comments as inline comments" (getsops/sops
    pull request 2131). A comment after a value was, and still is, a comment item
    placed before that value in the tree (so the MAC is unchanged); 3.11 writes
    it on its own line above the key (or as a list item of its own, in a list),
    3.13 writes it back after the value: ``a: ENC[..] #ENC[..,type:comment]``.
    Reading gives the same tree, so the same plaintext as the 3.11 form."""
    plain = "a: 1 # note\nb:\n    - x # item note\n    - y\nc: 3\n"
    old = sops_encrypted_copy(tmp_path, "c.yaml", plain, _env())
    lines, pending = [], ""
    for line in old.read_text().split("\n"):
        found = _COMMENT_LINE.match(line)
        if found:
            pending = "#" + (found.group(2) or found.group(4))
            continue
        lines.append(f"{line} {pending}" if pending else line)
        pending = ""
    new = tmp_path / "c313.yaml"
    new.write_text("\n".join(lines))
    text = new.read_text()
    assert re.search(r"^a: ENC\[[^\]]*type:int\] #ENC\[[^\]]*type:comment\]$", text, re.M)
    assert re.search(r"^    - ENC\[[^\]]*type:str\] #ENC\[[^\]]*type:comment\]$", text, re.M)
    assert _both_read(new) == _both_read(old)
    assert _both_read(new) == b'# note\na: 1\nb:\n    # item note\n    - x\n    - "y"\nc: 3\n'


def test_ini_metadata_newlines_of_sops_3_13_0_and_3_13_2(tmp_path: Path) -> None:
    """The [sops] section's multi-line values (the armored ``enc`` of age and
    PGP keys). sops <= 3.12 and 3.13.2 write each newline as the two
    characters ``\\n`` (one line per value); 3.13.0 and 3.13.1 dropped that
    escape (metadata rewritten with mapstructure, getsops/sops pull request
    2120), so go-ini wrote the value with real newlines inside ``\"\"\"``
    quotes; 3.13.2 restored the escape and reads both forms (pull request
    2189). Both forms must give the same metadata, hence the same plaintext."""
    escaped = sops_encrypted_copy(tmp_path, "c.ini", "[db]\nuser = admin\npassword = hunter2\n", _env())
    head, marker, section = escaped.read_text().partition("[sops]\n")
    assert "\\n" in section  # the 3.11 / 3.13.2 form
    lines = []
    for line in section.splitlines(keepends=True):
        key, equals, value = line.partition("= ")
        if "\\n" in value:
            value = '"""' + value.rstrip("\n").replace("\\n", "\n") + '"""\n'
        lines.append(key + equals + value)
    unescaped = tmp_path / "c130.ini"
    unescaped.write_text(head + marker + "".join(lines))
    assert "-----BEGIN AGE ENCRYPTED FILE-----\n" in unescaped.read_text()
    expected = b"[db]\nuser     = admin\npassword = hunter2\n"
    assert _both_read(escaped) == _both_read(unescaped) == expected


def test_json_integers_of_sops_3_13_2(tmp_path: Path) -> None:
    """sops 3.13.2, "JSON store: Preserve large integers that fit into int64"
    (getsops/sops pull request 2222). Before, JSON numbers went through float64:
    9007199254740993 was encrypted as ``9.007199254740992e+15`` with
    ``type:float`` (what the pinned binary still writes). 3.13.2 encrypts the
    exact digits with ``type:int``; reading must print them unchanged, the
    int64 extremes included."""
    store = store_for_path("big.json")
    tree = TreeMap([("big", 9007199254740993), ("low", -9223372036854775808), ("high", 9223372036854775807)])
    path = tmp_path / "big.json"
    path.write_bytes(encrypt_new(store, [tree], [[AgeKey(AGE_RECIPIENT)]]))
    assert '"big": "ENC[' in path.read_text() and "type:int]" in path.read_text()
    out = _both_read(path)
    assert json.loads(out) == {"big": 9007199254740993, "low": -9223372036854775808, "high": 9223372036854775807}
    assert b'"big": 9007199254740993,' in out
