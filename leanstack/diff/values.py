"""Changed values made readable: JSON documents as what they add and remove, user data decoded
(base64, gzip, the cloud-config and each file it writes) as a unified diff, long text as the
lines or words that differ. Never cut: a reviewer sees every changed value in full."""

from __future__ import annotations

import base64
import binascii
import difflib
import gzip
import json
from typing import Any

import yaml

USER_DATA = ("userData", "userDataBase64")
CONTEXT_LINES = 2


def canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def show(value: Any) -> str:
    """A value in full, as compact JSON (strings quoted)."""
    return canon(value)


def parse_document(value: Any) -> Any:
    """A JSON document held in a string (a policy, an event pattern), or None when it is not one."""
    if not isinstance(value, str) or not value.lstrip().startswith(("{", "[")):
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict | list) else None


def json_changes(old: Any, new: Any, path: str = "") -> list[str]:
    """Structural differences of two JSON values, one line each: `+ path: value` for what is
    added, `- path: value` for what is removed. Lists are compared as sets of items, so an
    action added to a statement reads as that action; statements are paired by `Sid`."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in new:
                lines.append(f"- {where}: {show(old[key])}")
            elif key not in old:
                lines.append(f"+ {where}: {show(new[key])}")
            elif old[key] != new[key]:
                lines += json_changes(old[key], new[key], where)
        return lines
    if isinstance(old, list) and isinstance(new, list):
        return _list_changes(old, new, path)
    if isinstance(old, list) or isinstance(new, list):
        # IAM allows "Action": "s3:GetObject" or a list of them: compare as lists.
        return _list_changes(old if isinstance(old, list) else [old], new if isinstance(new, list) else [new], path)
    return [f"- {path}: {show(old)}", f"+ {path}: {show(new)}"]


def _list_changes(old: list[Any], new: list[Any], path: str) -> list[str]:
    gone = [x for x in old if canon(x) not in {canon(y) for y in new}]
    came = [x for x in new if canon(x) not in {canon(y) for y in old}]
    lines: list[str] = []
    # Pair changed dicts (statements) by Sid, else by position among the changed ones.
    while gone and came and isinstance(gone[0], dict):
        first = gone.pop(0)
        sid = first.get("Sid")
        match = next((c for c in came if isinstance(c, dict) and sid is not None and c.get("Sid") == sid), None)
        if match is None and sid is None:
            match = next((c for c in came if isinstance(c, dict) and "Sid" not in c), None)
        if match is None:
            lines.append(f"- {path}[]: {show(first)}")
            continue
        came.remove(match)
        label = f"{path}[Sid={sid}]" if sid is not None else f"{path}[{old.index(first)}]"
        lines += json_changes(first, match, label)
    lines += [f"- {path}[]: {show(x)}" for x in gone]
    lines += [f"+ {path}[]: {show(x)}" for x in came]
    return lines


def decode_user_data(value: Any) -> str | None:
    """User data as the host reads it: base64 and gzip undone; None when it is not text."""
    if not isinstance(value, str):
        return None
    raw: bytes = value.encode()
    try:
        decoded = base64.b64decode(value, validate=True)
        raw = decoded
    except (binascii.Error, ValueError):
        pass
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _text_diff(old: str, new: str, label: str) -> list[str]:
    """The lines that differ, with context, as a unified diff (never cut)."""
    diff = difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"a/{label}", f"b/{label}", n=CONTEXT_LINES, lineterm=""
    )
    return list(diff)


def _cloud_config(text: str) -> dict[str, Any] | None:
    if not text.startswith("#cloud-config"):
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _file_content(entry: dict[str, Any]) -> str:
    content = str(entry.get("content") or "")
    encoding = str(entry.get("encoding") or "")
    if encoding in ("b64", "base64", "gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
        return decode_user_data(content) or content
    return content


def user_data_changes(old: Any, new: Any) -> tuple[list[str], list[str]]:
    """(summary, unified diff lines) of two user data values, decoded. The summary names the
    files of the cloud-config that are added, removed or changed."""
    a, b = decode_user_data(old), decode_user_data(new)
    if a is None or b is None:
        return ["user data is not text: compared as a whole"], [f"- {show(old)}", f"+ {show(new)}"]
    ca, cb = _cloud_config(a), _cloud_config(b)
    if ca is None or cb is None:
        return ["user data (decoded)"], _text_diff(a, b, "user-data")
    files_a = {str(f.get("path")): f for f in ca.get("write_files") or [] if isinstance(f, dict)}
    files_b = {str(f.get("path")): f for f in cb.get("write_files") or [] if isinstance(f, dict)}
    summary: list[str] = []
    lines: list[str] = []
    for path in sorted(set(files_a) | set(files_b)):
        fa, fb = files_a.get(path), files_b.get(path)
        if fa == fb:
            continue
        body_a = _file_content(fa) if fa else ""
        body_b = _file_content(fb) if fb else ""
        verb = "added" if fa is None else "removed" if fb is None else "changed"
        summary.append(f"cloud-config file {path} {verb}")
        lines += _text_diff(body_a, body_b, path.lstrip("/"))
        meta_a = {k: v for k, v in (fa or {}).items() if k != "content"}
        meta_b = {k: v for k, v in (fb or {}).items() if k != "content"}
        if fa and fb and meta_a != meta_b:
            lines += [f"  {path}: {line}" for line in json_changes(meta_a, meta_b)]
    rest_a = {k: v for k, v in ca.items() if k != "write_files"}
    rest_b = {k: v for k, v in cb.items() if k != "write_files"}
    if rest_a != rest_b:
        summary.append(
            "cloud-config "
            + ", ".join(sorted(k for k in set(rest_a) | set(rest_b) if rest_a.get(k) != rest_b.get(k)))
            + " changed"
        )
        lines += json_changes(rest_a, rest_b, "cloud-config")
    return summary or ["user data re-encoded, same content"], lines


def brief(change: dict[str, Any]) -> str:
    """A change in a few words, for a risk line: the values when short, else what changed."""
    if "old" not in change:
        return str(change["property"])
    old, new = show(change["old"]), show(change["new"])
    if len(old) + len(new) <= 80:
        return f"`{change['property']}` {old} → {new}"
    if change["property"] in USER_DATA:
        summary, _ = user_data_changes(change["old"], change["new"])
        return f"`{change['property']}` changes: {'; '.join(summary)}"
    return f"`{change['property']}` changes (shown below)"


def inline_diff(old: str, new: str, context: int = 6) -> str:
    """One line of text with the words that differ marked [-old-]{+new+}, a few words either side."""
    a, b = old.split(" "), new.split(" ")
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    parts: list[str] = []
    ops = matcher.get_opcodes()
    for n, (tag, i1, i2, j1, j2) in enumerate(ops):
        if tag == "equal":
            words = a[i1:i2]
            first, last = n == 0, n == len(ops) - 1
            if len(words) > 2 * context or (first and len(words) > context) or (last and len(words) > context):
                head = [] if first else words[:context]
                tail = [] if last else words[-context:]
                words = [*head, "…", *tail]
            parts.append(" ".join(words))
        else:
            if i2 > i1:
                parts.append("[-" + " ".join(a[i1:i2]) + "-]")
            if j2 > j1:
                parts.append("{+" + " ".join(b[j1:j2]) + "+}")
    return " ".join(p for p in parts if p)


def render_change(change: dict[str, Any]) -> list[str]:
    """One changed property as readable lines: a one-line `old → new` for short values, a
    structural diff for JSON documents, a unified diff for user data and long text."""
    prop, old, new = change["property"], change["old"], change["new"]
    if prop in USER_DATA:
        summary, lines = user_data_changes(old, new)
        return [f"{prop} (decoded): {'; '.join(summary)}"] + [f"    {line}" for line in lines]
    doc_a, doc_b = parse_document(old), parse_document(new)
    if doc_a is not None and doc_b is not None:
        return [f"{prop} (JSON document):"] + [f"    {line}" for line in json_changes(doc_a, doc_b)]
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        return [f"{prop} (text):"] + [f"    {line}" for line in _text_diff(old, new, prop)]
    if isinstance(old, str) and isinstance(new, str) and len(old) + len(new) > 160:
        return [f"{prop} (words marked [-removed-] {{+added+}}): {inline_diff(old, new)}"]
    if isinstance(old, list | dict) and isinstance(new, list | dict) and len(show(old)) + len(show(new)) > 160:
        return [f"{prop}:"] + [f"    {line}" for line in json_changes(old, new)]
    return [f"{prop}: {show(old)} → {show(new)}"]
