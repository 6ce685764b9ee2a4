#!/usr/bin/env python3
"""Checks the internal links of README.md and the book (docs/src): every relative link
names a file that exists, and every #anchor a heading of its page (GitHub's and mdBook's
slugs). Prints one line with the figures; exits 1 naming each broken link."""
import functools
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading):
    h = re.sub(r"[`*_]", "", heading.strip().lower())
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


def prose(path):
    """The page's lines outside code fences."""
    fence = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("```"):
                fence = not fence
                continue
            if not fence:
                yield line


@functools.lru_cache(maxsize=None)
def anchors(path):
    """The page's heading slugs, read once per page however many links point at it."""
    return {slug(m.group(1)) for m in (re.match(r"^#+ (.*)$", l) for l in prose(path)) if m}


def main():
    pages = [os.path.join(ROOT, "README.md")]
    src = os.path.join(ROOT, "docs", "src")
    pages += sorted(os.path.join(src, f) for f in os.listdir(src) if f.endswith(".md"))
    checked, broken = 0, []
    for page in pages:
        for line in prose(page):
            for target in LINK.findall(line):
                if re.match(r"^[a-z]+:", target):
                    continue
                checked += 1
                path, _, anchor = target.partition("#")
                dest = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
                where = os.path.relpath(page, ROOT)
                if not os.path.exists(dest):
                    broken.append(f"{where}: {target} (no such file)")
                elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
                    broken.append(f"{where}: {target} (no such heading)")
    print(f"docs: {len(pages)} pages, {checked} internal links checked, {len(broken)} broken")
    for b in broken:
        print(f"  broken: {b}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
