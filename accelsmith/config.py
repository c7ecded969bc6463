"""Configuration files: typed parameter definitions, validation with clear errors, JSON Schema.

A config is a YAML mapping with a ``family:`` key; the family declares its parameters as
:class:`Param` objects. The same declarations validate files, generate the JSON Schema shipped
for editors (``accelsmith/config.schema.json``) and the reference page ``docs/config-reference.md``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_REQUIRED = object()
MAX_FILE_BYTES = 64 * 1024   # a config is a few dozen lines; anything larger is not one
MAX_DEPTH = 4                # configs are flat mappings; deeper nesting is refused before use


class ConfigError(Exception):
    """A configuration problem, explained in one paragraph (file, key, value, what is allowed)."""


@dataclass(frozen=True)
class Param:
    """One typed configuration key.

    ``only_for`` restricts the key to some values of another key (for example parameters that
    exist for one architecture only): ``("architecture", ("tree",))``.
    """

    name: str
    kind: type
    doc: str
    default: Any = _REQUIRED
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple | None = None
    pattern: str | None = None
    only_for: tuple[str, tuple] | None = None
    default_doc: str | None = None
    choices_by: tuple[str, dict] | None = None   # (other key, {its value: allowed choices})

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kind = {int: "an integer", bool: "true or false", str: "a string"}[self.kind]
        if self.minimum is not None and self.maximum is not None:
            kind += f" from {self.minimum} to {self.maximum}"
        if self.pattern:
            kind += f" matching {self.pattern}"
        if self.default is None:
            kind += " (or null for the default)"
        return kind

    def json_schema(self) -> dict:
        types = {int: "integer", bool: "boolean", str: "string"}
        schema: dict = {"description": self.doc}
        if self.choices:
            schema["enum"] = list(self.choices)
        else:
            schema["type"] = [types[self.kind], "null"] if self.default is None else types[self.kind]
            if self.minimum is not None:
                schema["minimum"] = self.minimum
            if self.maximum is not None:
                schema["maximum"] = self.maximum
            if self.pattern:   # JSON Schema patterns search; validation matches the whole value
                schema["pattern"] = f"^(?:{self.pattern})$"
        if not self.required and self.default is not None:
            schema["default"] = self.default
        return schema


@dataclass(frozen=True)
class FamilySchema:
    """A family's parameters; ``checks`` are rules across keys, each taking the validated values
    and returning ``None`` or a sentence naming the keys, their values and what is allowed."""

    name: str
    doc: str
    params: tuple[Param, ...]
    checks: tuple = ()
    json_rules: tuple = ()      # the same cross-key rules for the JSON Schema (``allOf`` entries)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def absent_value(self, name: str):
        """What an absent key means: its default, or None for a required or unknown key."""
        p = self.param(name)
        return None if p is None or p.required else p.default

    def json_schema(self) -> dict:
        props = {"family": {"const": self.name, "description": "Accelerator family."}}
        props.update({p.name: p.json_schema() for p in self.params})
        schema = {
            "type": "object",
            "description": self.doc,
            "properties": props,
            "required": ["family"] + [p.name for p in self.params if p.required],
            "additionalProperties": False,
        }
        rules = []
        for p in self.params:
            if p.only_for:
                key, values = p.only_for
                condition = {"properties": {key: {"not": {"enum": list(values)}}}}
                # An absent key counts as its default, so the rule fires when that is excluded.
                if self.absent_value(key) in (None, *values):
                    condition["required"] = [key]
                rules.append({"if": condition, "then": {"not": {"required": [p.name]}}})
            if p.choices_by:
                key, table = p.choices_by
                for other, allowed in table.items():
                    rules.append({"if": {"properties": {key: {"const": other}}, "required": [key]},
                                  "then": {"properties": {p.name: {"enum": list(allowed)}}}})
        rules += list(self.json_rules)
        if rules:
            schema["allOf"] = rules
        return schema


@dataclass
class Config:
    """A validated configuration: the family, every parameter (defaults filled in), its source."""

    family: str
    values: dict
    source: str = "<config>"
    raw: dict = field(default_factory=dict)

    def __getitem__(self, key):
        return self.values[key]

    def as_dict(self) -> dict:
        return {"family": self.family, **self.values}


def _describe(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate(raw: Any, source: str = "<config>") -> Config:
    """Check a parsed config against its family's parameters; raise :class:`ConfigError`."""
    from .registry import FAMILIES, family_schema

    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the file must hold a YAML mapping of keys to values "
                          f"(like 'family: bitweight'), but it holds {type(raw).__name__} "
                          f"{_describe(raw)}.")
    if "family" not in raw:
        raise ConfigError(f"{source}: key 'family' is missing; every config names its accelerator "
                          f"family, one of: {', '.join(FAMILIES)}.")
    family = raw["family"]
    if family not in FAMILIES:
        close = difflib.get_close_matches(str(family), FAMILIES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{source}: key 'family' has value {_describe(family)}, which is not a "
                          f"known family; allowed: {', '.join(FAMILIES)}.{hint}")
    schema = family_schema(family)
    known = {p.name: p for p in schema.params}
    for key in raw:
        if key != "family" and key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{source}: key {_describe(key)} is not a parameter of family "
                              f"'{family}'.{hint} Allowed keys: family, {', '.join(known)}.")
    values = {}
    for p in schema.params:
        if p.name not in raw:
            if p.required:
                raise ConfigError(f"{source}: key '{p.name}' is missing; it is required for family "
                                  f"'{family}' and must be {p.allowed()}. ({p.doc})")
            continue
        value = raw[p.name]
        ok_type = (value is None and p.default is None) or (
            isinstance(value, p.kind) and not (p.kind is int and isinstance(value, bool)))
        if not ok_type:
            raise ConfigError(f"{source}: key '{p.name}' has value {_describe(value)} "
                              f"({type(value).__name__}), but it must be {p.allowed()}.")
        if value is not None:
            if p.choices and value not in p.choices:
                close = difflib.get_close_matches(str(value), [str(c) for c in p.choices], n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"{source}: key '{p.name}' has value {_describe(value)}, which is "
                                  f"not allowed; it must be {p.allowed()}.{hint}")
            if (p.minimum is not None and value < p.minimum) or (
                    p.maximum is not None and value > p.maximum):
                raise ConfigError(f"{source}: key '{p.name}' has value {value}, out of range; it "
                                  f"must be {p.allowed()}.")
            if p.pattern and not re.fullmatch(p.pattern, value):
                raise ConfigError(f"{source}: key '{p.name}' has value {_describe(value)}; it must "
                                  f"be {p.allowed()}.")
        values[p.name] = value
    for p in schema.params:
        if p.only_for and p.name in values:
            key, allowed = p.only_for
            current, note = values.get(key, raw.get(key)), ""
            if current is None and (default := schema.absent_value(key)) is not None:
                current, note = default, " (the default)"
            if current not in allowed:
                raise ConfigError(f"{source}: key '{p.name}' does not apply when {key} is "
                                  f"{_describe(current)}{note}; it is used only with {key} "
                                  f"{' or '.join(repr(a) for a in allowed)}. Remove it.")
    for p in schema.params:
        if p.name not in values and not p.required:
            applies = not p.only_for or values.get(p.only_for[0]) in p.only_for[1]
            if applies:
                values[p.name] = p.default
    for p in schema.params:
        if p.choices_by and values.get(p.name) is not None:
            key, table = p.choices_by
            allowed = table.get(values.get(key), ())
            if values[p.name] not in allowed:
                raise ConfigError(f"{source}: key '{p.name}' has value {_describe(values[p.name])}, "
                                  f"which is not available when {key} is {_describe(values.get(key))}; "
                                  f"it must be one of {', '.join(repr(a) for a in allowed)}.")
    for check in schema.checks:
        problem = check(values)
        if problem:
            raise ConfigError(f"{source}: {problem}")
    return Config(family, values, source, dict(raw))


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key stated twice in one mapping (PyYAML keeps the
    last silently) and nesting deeper than :data:`MAX_DEPTH`."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise ConfigError(
                        f"key {_describe(key)} is stated twice (lines {seen[key] + 1} and "
                        f"{key_node.start_mark.line + 1}); state each key once")
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return node.value if isinstance(node, yaml.SequenceNode) else []


def _depth(root, limit: int) -> None:
    """Refuse nesting deeper than ``limit`` levels. Heights are computed once per node (an alias
    is the node it names), so anchors and aliases cannot multiply the work however they nest."""
    height: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in height:
            continue
        kids = _children(node)
        if expanded or not kids:
            height[id(node)] = 1 + max((height[id(k)] for k in kids), default=0)
        else:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in height)
    if height[id(root)] > limit:
        node = root
        for _ in range(limit):   # follow the deepest branch to the first level past the limit
            node = max(_children(node), key=lambda k: height[id(k)])
        raise ConfigError(f"values nested more than {limit} levels deep (line "
                          f"{node.start_mark.line + 1})" + ("; a config is a flat mapping of keys "
                                                           "to plain values" if limit == MAX_DEPTH else ""))


def safe_yaml(text: str, source: str, max_depth: int = MAX_DEPTH):
    """Parse YAML data (never code): safe tags only, no duplicate keys, bounded nesting; raises
    :class:`ConfigError` naming ``source``."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _depth(node, max_depth)
        return loader.construct_document(node)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}.") from None
    finally:
        loader.dispose()


def resolve(path: str | Path) -> Path:
    """A config file: ``path`` itself, or a shipped reference config named by its stem
    (``os_4x4_int8`` or ``os_4x4_int8.yaml``) when no such file exists here."""
    from .registry import reference_configs

    path = Path(path)
    if path.exists() or len(path.parts) != 1:
        return path
    shipped = {p.stem: p for p in reference_configs()}
    name = path.name[:-5] if path.name.endswith(".yaml") else path.name
    if name in shipped:
        return shipped[name]
    close = difflib.get_close_matches(name, shipped, n=1)
    raise ConfigError(f"{path}: no such file, and no reference config of that name"
                      + (f" (did you mean {close[0]!r}?)" if close else "")
                      + "; 'accelsmith list' shows the reference configs.")


def read_yaml_file(path: Path, what: str = "config", max_bytes: int = MAX_FILE_BYTES,
                   max_depth: int = MAX_DEPTH):
    """The data of a YAML file (never code: :func:`safe_yaml`), at most ``max_bytes`` long;
    every problem is a :class:`ConfigError` naming the file (``what``: the kind of file)."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ConfigError(f"{path}: the file has {size:,} bytes; a {what} is at most "
                              f"{max_bytes:,} bytes (a mapping of 'key: value' lines).")
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file.") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc}).") from None
    try:
        return safe_yaml(text, str(path), max_depth)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}. A {what} is a mapping of "
                          f"'key: value' lines.") from None


def load(path: str | Path) -> Config:
    """Read and validate a YAML config file (or a reference config by name, see :func:`resolve`)."""
    path = resolve(path)
    return validate(read_yaml_file(path), str(path))


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of all config files, one branch per family."""
    from .registry import FAMILIES, family_schema

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://accelsmith.dev/config.schema.json",
        "title": "accelsmith configuration",
        "oneOf": [family_schema(f).json_schema() for f in FAMILIES],
    }


def reference_markdown() -> str:
    """The config reference page (docs/config-reference.md), generated from the parameters."""
    from .registry import FAMILIES, family_schema

    out = ["# Configuration reference", "",
           "Generated from the parameter definitions by `accelsmith schema --markdown`; "
           "do not edit by hand. Editors can validate configs with "
           "`accelsmith/config.schema.json` (add `# yaml-language-server: "
           "$schema=<path>/config.schema.json` to a file).", ""]
    for name in FAMILIES:
        schema = family_schema(name)
        out += [f"## family: `{name}`", "", schema.doc, "",
                "| key | type | default | allowed | applies to | meaning |",
                "| --- | --- | --- | --- | --- | --- |"]
        for p in schema.params:
            default = "required" if p.required else (p.default_doc or f"`{p.default}`")
            applies = (f"{p.only_for[0]}: " + ", ".join(p.only_for[1])) if p.only_for else "all"
            out.append(f"| `{p.name}` | {p.kind.__name__} | {default} | {p.allowed()} | "
                       f"{applies} | {p.doc} |")
        out.append("")
    return "\n".join(out)
