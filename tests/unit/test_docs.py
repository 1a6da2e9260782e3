"""The repository stands alone: its docs cover the settings, its links resolve, and neither code
nor docs cite documents a reader of the repository does not have. (tests/unit/test_docs_site.py
builds the site from docs/ with `mkdocs build --strict`.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from whisperx_api.config import FieldPath, Settings, env_name, env_names

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README_MAX_LINES = 250
# Pages beside the README, outside docs/.
TOP_PAGES = (ROOT / "README.md", ROOT / "CHANGELOG.md")

# Documents that exist only outside this repository, and "seed" used as the name of one. A
# `seed` parameter of a random generator (`seed: int`, `seed=`, `(seed)`) is not a reference.
FOREIGN_REFERENCES = (
    re.compile(r"\bAPI\.md\b"),
    re.compile(r"\bDESIGN\.md\b"),
    re.compile(r"\.\./shared\b|/work/shared\b"),
    re.compile(r"\bseeds?\b(?!\s*(?::\s*int\b|=|\)|,))", re.IGNORECASE),
)


def scanned_files() -> Iterator[Path]:
    yield from TOP_PAGES
    for folder, pattern in ((ROOT / "src", "*.py"), (DOCS, "*.md")):
        yield from sorted(folder.rglob(pattern))


def foreign_references(text: str) -> list[str]:
    return [
        f"{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if any(pattern.search(line) for pattern in FOREIGN_REFERENCES)
    ]


def test_no_code_or_doc_cites_documents_outside_the_repository() -> None:
    found = {
        str(path.relative_to(ROOT)): hits
        for path in scanned_files()
        if (hits := foreign_references(path.read_text(encoding="utf-8")))
    }
    assert found == {}


@pytest.mark.parametrize(
    "line",
    [
        "the second seed's flat names",
        "HTTP worker processes (seed: 0 = cores)",
        "as in the seed.",
        "see API.md §2",
        "described in ../shared/DESIGN.md",
        "Seeds: both",
    ],
)
def test_the_check_catches_references(line: str) -> None:
    assert foreign_references(line) != []


@pytest.mark.parametrize(
    "line",
    [
        "def kmeans(points: FloatArray, k: int, seed: int = 0) -> IntArray:",
        "rng = np.random.default_rng(seed)",
        "make(seed=3)",
        "a faint, seeded white noise",
        "see docs/api.md",
    ],
)
def test_the_check_leaves_random_seeds_alone(line: str) -> None:
    assert foreign_references(line) == []


def leaf_paths(model: type[BaseModel], prefix: FieldPath = ()) -> Iterator[FieldPath]:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from leaf_paths(annotation, (*prefix, name))
        else:
            yield (*prefix, name)


def test_configuration_doc_names_every_setting() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    names = [name for path in leaf_paths(Settings) for name in env_names(path)]
    assert [name for name in names if f"`{name}`" not in text] == []


def documented_defaults(text: str) -> dict[str, str]:
    """Each setting's cell in the `default` column of the configuration tables."""
    found: dict[str, str] = {}
    column: int | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            column = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "name":
            column = cells.index("default") if "default" in cells else None
        elif column is not None and not set(cells[0]) <= set("-: "):
            for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]):
                found[name] = cells[column]
    return found


def field_default(path: FieldPath) -> object:
    model: type[BaseModel] = Settings
    for name in path[:-1]:
        annotation = model.model_fields[name].annotation
        assert isinstance(annotation, type)
        assert issubclass(annotation, BaseModel)
        model = annotation
    return model.model_fields[path[-1]].get_default(call_default_factory=True)


def default_matches(cell: str, default: object) -> bool:
    """A value in backticks is the default as a user types it; any other text (`—`, "unset",
    "none", a sentence) stands for no value: None or an empty list."""
    typed = re.fullmatch(r"`([^`]*)`", cell)
    if typed is None:
        return default is None or default == []
    value = typed.group(1)
    if isinstance(default, bool):
        return value == str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return value == str(int(default))
    if isinstance(default, Path):
        return Path(value).expanduser() == default
    return value == str(default)


def test_configuration_doc_defaults_match() -> None:
    """The `default` column of docs/configuration.md against each field's own default, so a
    changed default cannot leave the docs behind."""
    cells = documented_defaults((DOCS / "configuration.md").read_text(encoding="utf-8"))
    wrong = {
        env_name(path): (cells.get(env_name(path)), field_default(path))
        for path in leaf_paths(Settings)
        if not default_matches(cells.get(env_name(path), "missing"), field_default(path))
        or env_name(path) not in cells
    }
    assert wrong == {}


@pytest.mark.parametrize(
    ("cell", "default"),
    [("`48`", 47.0), ("`false`", True), ("—", 8), ("none", ["a"]), ("`./data`", Path("d"))],
)
def test_the_defaults_check_catches_drift(cell: str, default: object) -> None:
    assert not default_matches(cell, default)


MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", [*TOP_PAGES, *sorted(DOCS.glob("*.md"))], ids=str)
def test_relative_links_resolve(page: Path) -> None:
    """On disk: a page that only the built site has would be a dead link on a repository
    browser (mkdocs build --strict checks the site's own links)."""
    targets = MARKDOWN_LINK.findall(page.read_text(encoding="utf-8"))
    local = [t for t in targets if "://" not in t and not t.startswith("mailto:")]
    assert [t for t in local if not (page.parent / t).exists()] == []


def test_the_readme_is_short_and_links_into_the_docs() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    assert "docs/getting-started.md" in MARKDOWN_LINK.findall(text)
    assert "docs/performance.md" in MARKDOWN_LINK.findall(text)


# A path in backticks under one of these folders names a file or folder of this repository.
REPO_PATH = re.compile(r"`((?:bench|tests|tools|src|docs)/[\w./-]*)")


@pytest.mark.parametrize("page", [*TOP_PAGES, *sorted(DOCS.glob("*.md"))], ids=str)
def test_repository_paths_named_in_docs_exist(page: Path) -> None:
    named = REPO_PATH.findall(page.read_text(encoding="utf-8"))
    assert [path for path in named if not (ROOT / path).exists()] == []
