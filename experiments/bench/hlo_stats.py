"""What a compiled program does per loop iteration, read from its optimised HLO.

For every ``while`` loop of ``jax.jit(f).lower(...).compile().as_text()`` it reports the trip
count, the loop-carried state (tuple elements and bytes) and what one iteration of the body
runs at top level: the instructions that cost a kernel launch or a thunk on CPU (``fusion``,
``dot``, ``custom-call``, ``sort``, ...), the fusions among them, nested loops and
conditionals, and the bookkeeping that costs nothing (``parameter``, ``get-tuple-element``,
``tuple``, ``constant``, ``bitcast``). Used by ``python -m experiments.bench.scale --hlo``
(docs/performance.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

FREE = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast", "after-all", "opt-barrier"}
_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4, "u32": 4,
                "f32": 4, "s64": 8, "u64": 8, "f64": 8}
_COMP = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$")
_INSTR = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (.+?) ([\w\-]+)\((.*)$")


@dataclass
class Loop:
    name: str
    body: str
    trips: int | None
    carried: int  # tuple elements carried from one iteration to the next
    carried_bytes: int
    kernels: int  # top-level instructions of the body that run (not FREE)
    fusions: int
    loops: int  # nested while loops
    conds: int  # conditionals
    ops: dict[str, int]  # kernel count per opcode


def _split_shapes(shape: str) -> list[str]:
    """Top-level elements of a (possibly tuple) HLO shape string."""
    shape = shape.strip()
    if not shape.startswith("("):
        return [shape]
    depth, cur, out = 0, "", []
    for ch in shape[1:-1]:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _bytes(shape: str) -> int:
    total = 0
    for dt, dims in re.findall(r"(\w+)\[([\d,]*)\]", shape):
        n = 1
        for d in filter(None, dims.split(",")):
            n *= int(d)
        total += n * _DTYPE_BYTES.get(dt, 4)
    return total


def parse(text: str) -> tuple[dict[str, list[tuple[str, str, str, str]]], list[str]]:
    """``{computation: [(name, shape, opcode, rest)]}`` and the computation names in order."""
    comps: dict[str, list] = {}
    order, cur = [], None
    for line in text.splitlines():
        if cur is None:
            m = _COMP.match(line)
            if m and "=" not in line.split("{")[0].split("(")[0]:
                cur = m.group(1)
                comps[cur] = []
                order.append(cur)
            continue
        if line.strip() == "}":
            cur = None
            continue
        m = _INSTR.match(line)
        if m:
            comps[cur].append(m.groups())
    return comps, order


def loops(text: str) -> list[Loop]:
    """Every while loop of an optimised HLO module, outermost first."""
    comps, _ = parse(text)
    out = []
    for comp, instrs in comps.items():
        for name, shape, op, rest in instrs:
            if op != "while":
                continue
            body = re.search(r"body=%?([\w.\-]+)", rest).group(1)
            trips = re.search(r'"known_trip_count":\{"n":"(\d+)"', rest)
            elems = _split_shapes(shape)
            ops: dict[str, int] = {}
            for _, _, bop, _ in comps.get(body, []):
                if bop not in FREE:
                    ops[bop] = ops.get(bop, 0) + 1
            out.append(Loop(name=name, body=body, trips=int(trips.group(1)) if trips else None, carried=len(elems),
                            carried_bytes=sum(_bytes(e) for e in elems), kernels=sum(ops.values()),
                            fusions=ops.get("fusion", 0), loops=ops.get("while", 0), conds=ops.get("conditional", 0),
                            ops=ops))
    return out


def conditional_branches(text: str) -> list[tuple[str, list[int]]]:
    """For each conditional: its name and the kernel count of each branch."""
    comps, _ = parse(text)
    out = []
    for instrs in comps.values():
        for name, _, op, rest in instrs:
            if op != "conditional":
                continue
            names = re.findall(r"(?:true_computation|false_computation)=%?([\w.\-]+)", rest)
            m = re.search(r"branch_computations=\{([^}]*)\}", rest)
            if m:
                names = [n.strip().lstrip("%") for n in m.group(1).split(",")]
            out.append((name, [sum(op2 not in FREE for _, _, op2, _ in comps.get(n, [])) for n in names]))
    return out


def table(text: str, label: str) -> str:
    """One line per loop: trips, carried elements/bytes, kernels, fusions, the busiest opcodes."""
    rows = [f"{label}: {len(text.splitlines())} HLO lines"]
    rows.append(f"  {'loop':<24} {'trips':>6} {'carried':>8} {'bytes':>9} {'kernels':>8} {'fusions':>8} "
                f"{'loops':>6} {'conds':>6}  other kernels")
    for l in loops(text):
        other = ", ".join(f"{k} {v}" for k, v in sorted(l.ops.items(), key=lambda kv: -kv[1])
                          if k not in ("fusion", "while", "conditional"))
        rows.append(f"  {l.name:<24} {l.trips if l.trips is not None else '?':>6} {l.carried:>8} {l.carried_bytes:>9} "
                    f"{l.kernels:>8} {l.fusions:>8} {l.loops:>6} {l.conds:>6}  {other}")
    for name, branches in conditional_branches(text):
        rows.append(f"  conditional {name}: kernels per branch {branches}")
    return "\n".join(rows)
