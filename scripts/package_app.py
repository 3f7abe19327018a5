"""Build the Function App zip from the repository, leaving out what .funcignore lists (the same
gitignore-style rules Core Tools applies), plus VCS, virtualenv and bytecode files always.

Usage: python scripts/package_app.py OUTPUT.zip [--root DIR]
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

ALWAYS_EXCLUDED = (".git/", ".venv/", "__pycache__/", "*.pyc", ".funcignore", "local.settings.json")


@dataclass(frozen=True)
class Rule:
    pattern: str
    negated: bool
    directory_only: bool
    anchored: bool

    @classmethod
    def parse(cls, line: str) -> Rule | None:
        line = line.strip()
        if not line or line.startswith("#"):
            return None
        negated = line.startswith("!")
        if negated:
            line = line[1:]
        directory_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = line.startswith("/") or "/" in line
        return cls(line.lstrip("/"), negated, directory_only, anchored)

    def matches(self, relative: str, is_dir: bool) -> bool:
        if self.directory_only and not is_dir:
            return False
        if self.anchored:
            return fnmatch.fnmatchcase(relative, self.pattern) or fnmatch.fnmatchcase(
                relative, self.pattern.replace("**/", "")
            )
        return fnmatch.fnmatchcase(relative.rsplit("/", 1)[-1], self.pattern)


def load_rules(root: Path) -> list[Rule]:
    lines = list(ALWAYS_EXCLUDED)
    funcignore = root / ".funcignore"
    if funcignore.exists():
        lines += funcignore.read_text().splitlines()
    else:
        print(f"package_app: {funcignore} not found; only the built-in exclusions apply", file=sys.stderr)
    return [rule for rule in (Rule.parse(line) for line in lines) if rule is not None]


def is_excluded(relative: str, is_dir: bool, rules: list[Rule]) -> bool:
    """Last matching rule wins, as in .gitignore."""
    excluded = False
    for rule in rules:
        if rule.matches(relative, is_dir):
            excluded = not rule.negated
    return excluded


def included_files(root: Path, rules: list[Rule]) -> list[str]:
    files: list[str] = []

    def walk(directory: Path) -> None:
        for entry in sorted(directory.iterdir()):
            relative = entry.relative_to(root).as_posix()
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if not is_excluded(relative, True, rules):
                    walk(entry)
            elif not is_excluded(relative, False, rules):
                files.append(relative)

    walk(root)
    return files


def build(root: Path, output: Path) -> list[str]:
    rules = load_rules(root)
    files = [f for f in included_files(root, rules) if (root / f).resolve() != output.resolve()]
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in files:
            archive.write(root / relative, relative)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("output", type=Path)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)
    files = build(args.root.resolve(), args.output)
    if "function_app.py" not in files or "host.json" not in files:
        print("package_app: function_app.py and host.json must be in the package", file=sys.stderr)
        return 1
    print(f"package_app: {len(files)} files -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
