"""Execute the notebooks of notebooks/ with real sampling and check their outputs.

    python tools/run_notebooks.py                 # execute every notebook, check, do not write
    python tools/run_notebooks.py --write         # execute and store the outputs in the files
    python tools/run_notebooks.py 01_quickstart   # only the notebooks whose name contains this

A separate CI step (``.ci/run``), not part of the pytest suite: the notebooks sample real
models. Each notebook must run top to bottom without an error, show no warning in any output
(sampler warnings included), show at least one figure inline and finish within ``--limit``
seconds (default 120). Needs the ``notebooks`` extra: ``pip install -e ".[notebooks]"``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

#: Output text that counts as a warning shown to the reader.
WARNING_RE = re.compile(
    r"\w*Warning\b|\bWARNING\b|warnings\.warn|divergen\w+ after|R-hat [>=]|Traceback",
)


def output_texts(nb) -> list[tuple[int, str]]:
    """(cell index, text) of every text output of a notebook."""
    out = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                t = o.get("text", "")
                out.append((i, "".join(t) if isinstance(t, list) else t))
            elif o.get("output_type") == "error":
                out.append((i, "Traceback " + o.get("ename", "") + ": " + o.get("evalue", "")))
            else:
                data = o.get("data", {})
                for kind in ("text/plain", "text/html", "text/markdown"):
                    if kind in data:
                        t = data[kind]
                        out.append((i, "".join(t) if isinstance(t, list) else t))
    return out


def problems(nb) -> list[str]:
    """What is wrong with an executed notebook: warnings shown, no figure, unexecuted cells.

    ``nb`` is a notebook node or the plain JSON dict of an ``.ipynb`` file.
    """
    found = []
    for i, text in output_texts(nb):
        m = WARNING_RE.search(text)
        if m:
            line = next((ln for ln in text.splitlines() if m.group(0) in ln), m.group(0))
            found.append(f"cell {i}: warning in output: {line.strip()[:160]}")
    n_png = sum(
        "image/png" in o.get("data", {})
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
    )
    if n_png == 0:
        found.append("no figure shown inline (no image/png output)")
    for i, c in enumerate(nb["cells"]):
        source = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        if c["cell_type"] == "code" and source.strip() and c.get("execution_count") is None:
            found.append(f"cell {i}: not executed")
    return found


def slowest(nb, n: int = 3) -> str:
    """The ``n`` slowest cells of an executed notebook, from nbclient's timing metadata."""
    from datetime import datetime

    times = []
    for i, c in enumerate(nb.cells):
        t = c.get("metadata", {}).get("execution", {})
        a, b = t.get("iopub.execute_input"), t.get("shell.execute_reply")
        if a and b:
            d = datetime.fromisoformat(b.replace("Z", "+00:00")) - datetime.fromisoformat(
                a.replace("Z", "+00:00")
            )
            times.append((d.total_seconds(), i))
    return ", ".join(f"cell {i} {s:.0f} s" for s, i in sorted(times, reverse=True)[:n])


def run_one(path: Path, *, timeout: int) -> tuple[object, float]:
    """Execute one notebook in a fresh kernel (working directory notebooks/)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    t0 = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - t0


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes (kernels and their workers)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> int:
    """Execute and check the notebooks; exit status 1 on any problem."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="run only notebooks whose file name contains one")
    ap.add_argument("--write", action="store_true", help="store the outputs in the notebooks")
    ap.add_argument(
        "--write-slow",
        action="store_true",
        help="with --write: store a notebook that is clean but over the time limit",
    )
    ap.add_argument("--cell-timeout", type=int, default=600, help="seconds allowed per cell")
    ap.add_argument("--limit", type=float, default=120.0, help="seconds allowed per notebook")
    args = ap.parse_args(argv)
    import nbformat

    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if args.names:
        paths = [p for p in paths if any(n in p.name for n in args.names)]
    failed = 0
    for path in paths:
        cpu0 = children_cpu()
        try:
            nb, seconds = run_one(path, timeout=args.cell_timeout)
        except Exception as exc:  # noqa: BLE001 - report and go on with the others
            print(f"FAIL {path.name}: {type(exc).__name__}: {str(exc).splitlines()[-1][:300]}")
            failed += 1
            continue
        issues = problems(nb)
        clean = not issues
        if seconds > args.limit:
            issues.append(f"took {seconds:.0f} s (limit {args.limit:.0f} s)")
        status = "ok" if not issues else "FAIL"
        cpu = children_cpu() - cpu0
        print(
            f"{status} {path.name}: {seconds:.1f} s wall, {cpu:.0f} s CPU of the kernel and its "
            f"workers (slowest cells: {slowest(nb)})"
        )
        for msg in issues:
            print("    " + msg)
        failed += bool(issues)
        if args.write and (clean if args.write_slow else not issues):
            nbformat.write(nb, path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
