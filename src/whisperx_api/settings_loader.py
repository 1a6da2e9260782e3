"""Reads `Settings` through pydantic-settings' own sources, highest priority first:

1. `overrides`: pydantic-settings' init source (groups as dicts, or models that win outright),
2. the environment: its env source with `__` nesting, any case, empty values ignored;
   a field's nested name (`WHISPER__INFERENCE_DEVICE`) beats its flat alias (`WHISPER_DEVICE`),
3. a TOML file: its TOML source on `config_file`, else `$WHISPER_API_CONFIG`, else
   `./whisper_api.conf` if present. Keys may be flat names, nested names, root fields or
   `[group]` tables (nested beat flat); an unknown key fails.
4. defaults.

pydantic-settings merges the sources field by field. Each source also remembers, per field,
the name the user wrote, so that an invalid value fails with a `ConfigError` naming the
variable (or the TOML key and file) and what is allowed. docs/configuration.md lists the names.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, get_args

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    TomlConfigSettingsSource,
)

from whisperx_api.config import (
    ALIAS_CONVERTERS,
    FLAT_ALIASES,
    NESTED_DELIMITER,
    FieldPath,
    Settings,
    env_name,
)
from whisperx_api.errors import ConfigError

CONFIG_ENV_VAR: Final = "WHISPER_API_CONFIG"
DEFAULT_CONFIG_NAME: Final = "whisper_api.conf"


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    *,
    cwd: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from overrides, environment, config file and defaults.

    `environ` defaults to `os.environ`, `cwd` to the working directory (tests pass both).
    Raises `ConfigError` naming the offending variable or key.
    """
    env = os.environ if environ is None else environ
    file = config_path(env, config_file, Path.cwd() if cwd is None else cwd)
    sources: list[TracedSource] = [
        OverridesSource(Settings, overrides or {}),
        EnvSource(Settings, env),
    ]
    if file is not None:
        sources.append(TomlSource(Settings, file))
    try:
        # `_build_sources` is BaseSettings' own argument; mypy sees only the fields' signature
        return Settings(_build_sources=(tuple(sources), {}))  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = [_describe(error["loc"], error["msg"], sources) for error in exc.errors()]
        raise ConfigError("\n".join(problems)) from exc


def config_path(environ: Mapping[str, str], config_file: Path | None, cwd: Path) -> Path | None:
    """The TOML file: the argument, else `$WHISPER_API_CONFIG`, else `./whisper_api.conf`."""
    if config_file is not None:
        return _existing(cwd / config_file.expanduser(), f"config file {config_file}")
    named = next((v for k, v in environ.items() if k.upper() == CONFIG_ENV_VAR and v), None)
    if named is not None:
        return _existing(cwd / Path(named).expanduser(), f"{CONFIG_ENV_VAR}={named!r}")
    default = cwd / DEFAULT_CONFIG_NAME
    return default if default.is_file() else None


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"{what}: no such file ({path})")
    return path


# --- where each value came from ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provided:
    """One value and where the user put it: `name` as spelt there, `where` a file or None (env)."""

    value: Any
    name: str
    where: str | None = None

    def describe(self, secret: bool) -> str:
        shown = "'**********'" if secret else _short_repr(self.value)
        place = f" in {self.where}" if self.where else ""
        return f"{self.name}={shown}{place}"


def _short_repr(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


Origins = dict[FieldPath, Provided]


class TracedSource:
    """A source that can say who set a field path (a leaf, or a whole group)."""

    origins: Origins

    def origin(self, path: FieldPath) -> Provided | None:
        return self.origins.get(path)


def _describe(loc: tuple[int | str, ...], msg: str, sources: Sequence[TracedSource]) -> str:
    """The strongest source that set the failing field (or its group) names it."""
    path = tuple(str(part) for part in loc)
    msg = msg.removeprefix("Value error, ")
    if not path:
        return msg
    for source in sources:
        for end in range(len(path), 0, -1):
            provided = source.origin(path[:end])
            if provided is not None:
                return f"{provided.describe(_is_secret(Settings, path[:end]))}: {msg}"
    return f"{env_name(path)}: {msg}"


def _with_flat(nested: Origins, flat: Origins) -> Origins:
    """Within one source, a field's nested name beats its flat alias."""
    return {**{p: v for p, v in flat.items() if p not in nested}, **nested}


def _flat_alias(name: str, value: Any, where: str | None) -> tuple[FieldPath, Provided]:
    provided = Provided(value, name, where)
    convert = ALIAS_CONVERTERS.get(name.upper())
    if convert is not None:
        try:
            provided = Provided(convert(value), name, where)
        except ValueError as exc:
            raise ConfigError(f"{provided.describe(secret=False)}: {exc}") from None
    return FLAT_ALIASES[name.upper()], provided


# --- the sources ---------------------------------------------------------------------------------


class OverridesSource(InitSettingsSource, TracedSource):
    """Keyword overrides, as `Settings(...)` takes them."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, Any]) -> None:
        super().__init__(settings_cls, dict(values))
        self.origins = {
            path: Provided(value, ".".join(path), "overrides")
            for path, value in _flatten(settings_cls, values, ())
        }


class EnvSource(EnvSettingsSource, TracedSource):
    """The environment by nested names, with the flat aliases filled in under them.

    Only names of leaf fields and flat aliases are read: `PATH`, `SERVER` or `WHISPER__NOPE`
    are someone else's business, not a JSON group or an error.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(
            settings_cls,
            case_sensitive=False,
            env_prefix="",
            env_nested_delimiter=NESTED_DELIMITER,
            env_ignore_empty=True,
        )
        nested: Origins = {}
        flat: Origins = {}
        for name, value in environ.items():
            path = _leaf_path(settings_cls, name.split(NESTED_DELIMITER))
            if value == "":
                continue
            if path is not None:
                nested[path] = Provided(value, name)
            elif name.upper() in FLAT_ALIASES:
                alias_path, provided = _flat_alias(name, value, None)
                flat[alias_path] = provided
        self.origins = _with_flat(nested, flat)
        self._flat = {path: flat[path] for path in flat if path not in nested}

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {
            name.lower(): value
            for name, value in self._environ.items()
            if value != "" and _leaf_path(self.settings_cls, name.split(NESTED_DELIMITER))
        }

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        for path, provided in self._flat.items():
            _put(values, path, provided.value)
        return values


class TomlSource(TomlConfigSettingsSource, TracedSource):
    """`whisper_api.conf`: flat names, nested names, root fields and `[group]` tables."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        self.path = path
        self._schema = settings_cls  # the parent sets `settings_cls` only after reading the file
        self.origins = {}
        super().__init__(settings_cls, toml_file=path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            data = super()._read_file(file_path)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {self.path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {self.path} is not valid TOML: {exc}") from None
        self.origins = self._canonical(data)
        return _nest({path: provided.value for path, provided in self.origins.items()})

    def _canonical(self, data: Mapping[str, Any]) -> Origins:
        where = str(self.path)
        nested: Origins = {}
        flat: Origins = {}
        for key, value in data.items():
            if key.upper() in FLAT_ALIASES:
                path, provided = _flat_alias(key, value, where)
                flat[path] = provided
            else:
                nested.update(self._nested(key, value, where))
        return _with_flat(nested, flat)

    def _nested(self, key: str, value: Any, where: str) -> Origins:
        if _is_group(self._schema, (key.lower(),)):
            if not isinstance(value, dict):
                raise ConfigError(f"{key!r} in {where} must be a table ([{key.lower()}])")
            leaves: Origins = {}
            for sub, item in value.items():
                leaves.update(self._nested(f"{key}.{sub}", item, where))
            return leaves
        path = _leaf_path(self._schema, key.replace(NESTED_DELIMITER, ".").split("."))
        if path is None:
            raise ConfigError(f"unknown key {key!r} in {where}{_suggestion(key)}")
        return {path: Provided(value, key, where)}


# --- the schema's shape --------------------------------------------------------------------------


def _group_model(field: FieldInfo) -> type[BaseModel] | None:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _field(model: type[BaseModel], path: Sequence[str]) -> FieldInfo | None:
    """The field at `path` (group or leaf), or None."""
    current: type[BaseModel] | None = model
    found: FieldInfo | None = None
    for part in path:
        found = current.model_fields.get(part) if current is not None else None
        if found is None:
            return None
        current = _group_model(found)
    return found


def _leaf_path(model: type[BaseModel], parts: Sequence[str]) -> FieldPath | None:
    """`parts` lower-cased if they name a leaf (not a group) field, else None."""
    path = tuple(part.lower() for part in parts)
    field = _field(model, path) if path else None
    return path if field is not None and _group_model(field) is None else None


def _is_group(model: type[BaseModel], path: FieldPath) -> bool:
    field = _field(model, path)
    return field is not None and _group_model(field) is not None


def _is_secret(model: type[BaseModel], path: FieldPath) -> bool:
    field = _field(model, path)
    return field is not None and SecretStr in (field.annotation, *get_args(field.annotation))


def _known_keys(model: type[BaseModel], prefix: FieldPath = ()) -> Iterator[str]:
    for name, field in model.model_fields.items():
        group = _group_model(field)
        if group is None:
            yield ".".join((*prefix, name))
        else:
            yield from _known_keys(group, (*prefix, name))


def _suggestion(key: str) -> str:
    known = [*FLAT_ALIASES, *_known_keys(Settings)]
    close = difflib.get_close_matches(key, known, n=1) or difflib.get_close_matches(
        key.upper(), known, n=1
    )
    return f" (did you mean {close[0]!r}?)" if close else ""


def _flatten(
    model: type[BaseModel], values: Mapping[str, Any], prefix: FieldPath
) -> Iterable[tuple[FieldPath, Any]]:
    for key, value in values.items():
        path = (*prefix, key)
        if isinstance(value, Mapping) and _is_group(model, path):
            yield from _flatten(model, value, path)
        else:
            yield path, value


def _put(tree: dict[str, Any], path: FieldPath, value: Any) -> None:
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def _nest(leaves: Mapping[FieldPath, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in leaves.items():
        _put(tree, path, value)
    return tree
