#!/usr/bin/env python3
"""Import circles between the modules of each crate of the workspace, at every depth: module
A's code names B (`crate::b::…`, `super::b::…`, `self::b::…` or a child `b::…`) while B's
names A, or longer rings. A module naming one of its own ancestors is not an edge (it is
part of it: a child file of `world/` uses `World`); a parent naming its child is. Comments
(doc links) and tests modules (`mod tests`) are left out. Prints one line with the figures;
exits 1 naming each circle."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["booster-core", "booster-sim", "booster-k8s", "booster-aws", "booster-bin", "tests"]


def modules(src):
    """Module path (`world/nth`; a `mod.rs` is its directory's module) -> its code (tests
    modules cut off)."""
    out = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, src).replace(os.sep, "/").removesuffix(".rs")
            rel = rel.removesuffix("/mod")
            if rel in ("lib", "main"):
                continue
            # Doc comments may link anywhere: only code counts.
            text = "".join(
                l for l in open(path, encoding="utf-8") if not l.lstrip().startswith("//")
            )
            cut = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod tests", text, re.M)
            out[rel] = text[: cut.start()] if cut else text
    return out


def deepest(mods, parts):
    """The deepest module a path's leading segments name, or None."""
    best = None
    for i in range(1, len(parts) + 1):
        cand = "/".join(parts[:i])
        if cand in mods:
            best = cand
        else:
            break
    return best


def edges(mods, m, text):
    """The modules `m`'s code names, its own ancestors and itself left out."""
    parent = m.rsplit("/", 1)[0] if "/" in m else ""
    found = set()
    for path in re.findall(r"\b((?:crate|super|self|[a-z_][a-z0-9_]*)(?:::[a-z_][a-z0-9_]*)+)", text):
        parts = path.split("::")
        head = parts[0]
        if head == "crate":
            base = []
        elif head == "super":
            base = parent.split("/") if parent else []
            while len(parts) > 1 and parts[1] == "super":
                base, parts = base[:-1], parts[1:]
        elif head == "self":
            base = m.split("/")
        else:
            # A bare path names a child module of `m` (uniform paths) or something else.
            base, parts = m.split("/"), ["self"] + parts
        target = deepest(mods, base + parts[1:]) if base + parts[1:] else None
        if target is None:
            continue
        if target == m or m.startswith(target + "/"):
            continue
        found.add(target)
    return found


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
        graph = {m: edges(mods, m, text) for m, text in mods.items()}
        rings += [f"{crate}: " + " -> ".join(r) for r in cycles(graph)]
    print(f"import circles: {total_mods} modules in {len(CRATES)} crates, {len(rings)} circles")
    for r in rings:
        print(f"  circle: {r}")
    return 1 if rings else 0


if __name__ == "__main__":
    sys.exit(main())
