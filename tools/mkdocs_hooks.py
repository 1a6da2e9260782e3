"""MkDocs hooks: pages generated at build time, offline.

- `reference/endpoints.md`: every operation of the server's own OpenAPI document, built from
  `create_app` (nothing listens, nothing loads), so the reference cannot drift from the code.
- `reference/openapi.json`: that document itself, for client generators.
- `changelog.md`: the repository's CHANGELOG.md, which lives beside the README, not in docs/.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
ENDPOINTS_PAGE = "reference/endpoints.md"
SCHEMA_FILE = "reference/openapi.json"
CHANGELOG_PAGE = "changelog.md"
METHODS = ("get", "post", "put", "patch", "delete", "options", "head")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated pages to the site before the nav and the links are checked."""
    schema = openapi_document()
    files.append(File.generated(config, SCHEMA_FILE, content=json.dumps(schema, indent=2)))
    files.append(File.generated(config, ENDPOINTS_PAGE, content=render(schema)))
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    files.append(File.generated(config, CHANGELOG_PAGE, content=changelog))
    return files


def openapi_document() -> dict[str, Any]:
    """The schema `GET /openapi.json` serves, from an app on default settings in a scratch dir."""
    from whisperx_api.api.app import create_app
    from whisperx_api.config import JobsSettings, Settings, WhisperSettings

    with tempfile.TemporaryDirectory(prefix="whisperx-docs-") as scratch:
        root = Path(scratch)
        settings = Settings(
            jobs=JobsSettings(data_dir=root / "data"),
            whisper=WhisperSettings(cache_dir=root / "cache"),
        )
        schema: dict[str, Any] = create_app(settings).openapi()
    return schema


def render(schema: dict[str, Any]) -> str:
    """The OpenAPI document as one Markdown page: a section per operation, a table per form."""
    info = schema["info"]
    lines = [
        "# Endpoints (generated)",
        "",
        f"Generated at build time from the OpenAPI {schema['openapi']} document of "
        f"{info['title']} {info['version']}, the one the server serves at `GET /openapi.json` "
        "(also [here](openapi.json)). [HTTP API](../api.md) explains the behaviour behind "
        "these fields; `/docs` on a running server renders the same document interactively.",
        "",
        "| method | path | summary |",
        "|---|---|---|",
    ]
    operations = [
        (method, path, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]
    for method, path, op in operations:
        lines.append(f"| `{method.upper()}` | `{path}` | {_cell(op.get('summary', ''))} |")
    for method, path, op in operations:
        lines += ["", *_operation(schema, method, path, op)]
    return "\n".join(lines) + "\n"


def _operation(schema: dict[str, Any], method: str, path: str, op: dict[str, Any]) -> list[str]:
    lines = [f"## `{method.upper()} {path}`", ""]
    if description := op.get("description"):
        lines += [description.strip(), ""]
    auth = "an API key (`Authorization: Bearer`) when auth is on" if op.get("security") else "none"
    lines += [f"Authentication: {auth}.", ""]
    if parameters := op.get("parameters"):
        lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for param in parameters:
            lines.append(
                f"| `{param['name']}` | {param['in']} | {_type(schema, param.get('schema', {}))} "
                f"| {'yes' if param.get('required') else 'no'} "
                f"| {_cell(param.get('description', ''))} |"
            )
        lines.append("")
    for media, body in op.get("requestBody", {}).get("content", {}).items():
        lines += [*_form(schema, media, body.get("schema", {})), ""]
    lines += ["| status | description | media types |", "|---|---|---|"]
    for status, response in op["responses"].items():
        media = ", ".join(f"`{m}`" for m in response.get("content", {})) or "—"
        lines.append(f"| {status} | {_cell(response.get('description', ''))} | {media} |")
    return lines


def _form(schema: dict[str, Any], media: str, body: dict[str, Any]) -> list[str]:
    body = _resolve(schema, body)
    required = set(body.get("required", ()))
    lines = [
        f"Request body (`{media}`):",
        "",
        "| field | type | default | description |",
        "|---|---|---|---|",
    ]
    for name, prop in body.get("properties", {}).items():
        prop = _resolve(schema, prop)
        default = "required" if name in required else _default(prop)
        description = _cell(prop.get("description", ""))
        lines.append(f"| `{name}` | {_type(schema, prop)} | {default} | {description} |")
    if choices := body.get("oneOf"):
        needed = [" + ".join(f"`{n}`" for n in c.get("required", ())) for c in choices]
        lines += ["", f"Exactly one of: {', '.join(needed)}."]
    return lines


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _type(schema: dict[str, Any], prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return f"`{prop['$ref'].rsplit('/', 1)[-1]}`"
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return " or ".join(_type(schema, p) for p in prop[key])
    kind = prop.get("type", "any")
    if kind == "string" and (prop.get("format") == "binary" or "contentMediaType" in prop):
        kind = "file"
    elif kind == "array":
        kind = f"list of {_type(schema, prop.get('items', {})).strip('`')}"
    text = f"`{kind}`"
    if "enum" in prop:
        text += ": " + ", ".join(f"`{value}`" for value in prop["enum"])
    bounds = [
        f"{symbol} {prop[key]:g}" if isinstance(prop[key], float) else f"{symbol} {prop[key]}"
        for key, symbol in (("minimum", "≥"), ("maximum", "≤"), ("maxLength", "length ≤"))
        if key in prop
    ]
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return "—"
    return f"`{json.dumps(prop['default'])}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
