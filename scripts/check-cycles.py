#!/usr/bin/env python3
"""Import circles between the modules of each crate of the workspace: module A's code names
`crate::b` while B's names `crate::a`, or longer rings. Comments (doc links) and tests
modules (`mod tests`) are left out. Prints one line with the figures; exits 1 naming each
circle."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["booster-core", "booster-sim", "booster-k8s", "booster-aws", "booster-bin", "tests"]


def modules(src):
    """Top-level module name -> the text of its files (tests modules cut off)."""
    out = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, src).replace(os.sep, "/")
            top = rel.split("/")[0].removesuffix(".rs")
            if top in ("lib", "main"):
                continue
            # Doc comments may link anywhere: only code counts.
            text = "".join(
                l for l in open(path, encoding="utf-8") if not l.lstrip().startswith("//")
            )
            cut = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod tests", text, re.M)
            out.setdefault(top, []).append(text[: cut.start()] if cut else text)
    return out


def cycles(graph):
    found, seen = [], set()

    def walk(node, path):
        for nxt in sorted(graph.get(node, ())):
            if nxt == path[0]:
                ring = tuple(path)
                key = frozenset(ring)
                if key not in seen:
                    seen.add(key)
                    found.append(ring + (nxt,))
            elif nxt not in path and len(path) < 8:
                walk(nxt, path + [nxt])

    for n in sorted(graph):
        walk(n, [n])
    return found


def main():
    total_mods, rings = 0, []
    for crate in CRATES:
        src = os.path.join(ROOT, crate, "src")
        if not os.path.isdir(src):
            continue
        mods = modules(src)
        total_mods += len(mods)
        graph = {}
        for m, texts in mods.items():
            used = set()
            for t in texts:
                used |= set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", t))
            graph[m] = {u for u in used if u in mods and u != m}
        rings += [f"{crate}: " + " -> ".join(r) for r in cycles(graph)]
    print(f"import circles: {total_mods} modules in {len(CRATES)} crates, {len(rings)} circles")
    for r in rings:
        print(f"  circle: {r}")
    return 1 if rings else 0


if __name__ == "__main__":
    sys.exit(main())
