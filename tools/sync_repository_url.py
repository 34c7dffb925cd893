#!/usr/bin/env python3
"""Keep the repository's address in one place: `repository.url` in _config.yml.

The address also appears in the chapters' Colab install cells (``%pip install "lle_lib @ git+URL"``), in clone
instructions (``git clone URL && cd NAME``), in pyproject's [project.urls], in links to the repository and its
issues, and in the site's address on GitHub Pages (``https://OWNER.github.io/NAME``). This script rewrites every
such occurrence from _config.yml.

    python tools/sync_repository_url.py            # rewrite the files that disagree, list them
    python tools/sync_repository_url.py --check    # list the files that disagree; exit 1 if any

Moving the repository: change `repository.url` in _config.yml, run this script, commit.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
#: Where the address may appear (globs relative to the root). _config.yml itself is the source.
FILES = ("README.md", "pyproject.toml", "environment.yml", "postBuild", "Makefile", "book/**/*.md",
         "book/**/*.ipynb", "lle_lib/**/*.py", ".github/workflows/*.yml", ".ci/*")
SKIP_PARTS = {"_build", ".venv", ".git", "_vendor", ".ipynb_checkpoints", "__pycache__"}

_NAME = r"[A-Za-z0-9_.-]+?"
_END = r"(?:\.git)?(?=[\"'\s)<>\]#@,;`]|\\[nt\"]|$)"


@dataclass(frozen=True)
class Repository:
    owner: str
    name: str
    #: Other (owner, name) pairs known to mean this repository: the addresses in the pip install cells, which
    #: always name it (the old address, after a move).
    aliases: frozenset = frozenset()

    @property
    def url(self) -> str:
        return f"https://github.com/{self.owner}/{self.name}"

    @property
    def pages(self) -> str:
        return f"https://{self.owner.lower()}.github.io/{self.name}"


def read_repository(root: Path) -> Repository:
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    url = str((config.get("repository") or {}).get("url") or "").strip().rstrip("/")
    match = re.fullmatch(rf"https://github\.com/([A-Za-z0-9_.-]+)/({_NAME})(?:\.git)?", url)
    if not match:
        raise SystemExit(f"_config.yml: repository.url {url!r} is not https://github.com/OWNER/NAME")
    return Repository(match[1], match[2])


def _related(owner: str, name: str, repo: Repository) -> bool:
    """Whether an address names this book's repository (same owner or same name, or an address that the pip
    install cells use), not another project."""
    name = name.lower().removesuffix(".git")
    return owner.lower() == repo.owner.lower() or name == repo.name.lower() or (owner.lower(), name) in repo.aliases


def _clone(m, repo):
    if not _related(m["owner"], m["name"], repo):
        return m[0]
    return f"git clone {repo.url}{m['cd'] or ''}{repo.name if m['dir'] else ''}"


#: (what it is, pattern, replacement given the repository). Each pattern matches the address in one context.
#: The pip rule always names this repository; the others rewrite only addresses with this repository's owner or
#: name, so that links to other projects (github.com/.../issues, someone.github.io) are left alone.
RULES = (
    ("pip install from git", re.compile(rf"(lle_lib\s*@\s*git\+)https://github\.com/[A-Za-z0-9_.-]+/{_NAME}{_END}"),
     lambda m, repo: f"{m[1]}{repo.url}"),
    ("git clone", re.compile(
        rf"git clone https://github\.com/(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>{_NAME}){_END}"
        r"(?P<cd>\s*&&\s*cd\s+)?(?P<dir>(?<=cd )[A-Za-z0-9_.-]+)?"), _clone),
    ("address of the repository", re.compile(
        rf"https://github\.com/(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>{_NAME})(?=/(?:issues|pulls|actions|blob|tree|"
        r"releases|discussions|archive|raw)\b|[\"'\s)<>\]#,;`]|\\[nt\"]|$)"),
     lambda m, repo: repo.url if _related(m["owner"], m["name"], repo) else m[0]),
    ("GitHub Pages address", re.compile(rf"https://(?P<owner>[A-Za-z0-9-]+)\.github\.io/(?P<name>{_NAME})(?=[/\"'\s)<>\]#]|$)"),
     lambda m, repo: repo.pages if _related(m["owner"], m["name"], repo) else m[0]),
)


_PIP_ADDRESS = re.compile(rf"lle_lib\s*@\s*git\+https://github\.com/([A-Za-z0-9_.-]+)/({_NAME}){_END}")


def candidate_files(root: Path) -> list[Path]:
    found = set()
    for pattern in FILES:
        for path in root.glob(pattern):
            if path.is_file() and not SKIP_PARTS.intersection(path.relative_to(root).parts):
                found.add(path)
    return sorted(found)


def sync_text(text: str, repo: Repository) -> tuple[str, list[tuple[int, str, str, str]]]:
    """The text with every occurrence rewritten, and the (line, rule, found, expected) of those that differed."""
    differences = []
    for what, pattern, replace in RULES:
        def substitute(match, what=what, replace=replace):
            new = replace(match, repo)
            if new != match[0]:
                line = text.count("\n", 0, match.start()) + 1
                differences.append((line, what, match[0], new))
            return new
        text = pattern.sub(substitute, text)
    return text, differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only list the files that disagree; exit 1 if any")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository's root (default: %(default)s)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    repo = read_repository(root)
    files = candidate_files(root)
    aliases = set()
    for path in files:
        for match in _PIP_ADDRESS.finditer(path.read_text(encoding="utf-8")):
            aliases.add((match[1].lower(), match[2].lower().removesuffix(".git")))
    repo = Repository(repo.owner, repo.name, frozenset(aliases))
    disagreeing = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        new, differences = sync_text(text, repo)
        if not differences:
            continue
        rel = path.relative_to(root)
        disagreeing.append(rel)
        for line, what, found, expected in differences:
            print(f"{rel}:{line}: {what}: {found} -> {expected}")
        if not args.check:
            path.write_text(new, encoding="utf-8")
    if args.check:
        if disagreeing:
            print(f"{len(disagreeing)} file(s) disagree with _config.yml's repository.url {repo.url}; "
                  f"run: python tools/sync_repository_url.py", file=sys.stderr)
            return 1
        print(f"every occurrence agrees with _config.yml's repository.url {repo.url}")
        return 0
    print(f"rewrote {len(disagreeing)} file(s) from _config.yml's repository.url {repo.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
