"""LangGraph's own CPU per superstep, for scale: a one-node graph whose async node and async
router loop ``--steps`` times (``astream``, no checkpointer), run ``--episodes`` times.

    python bench/langgraph_step.py
    python bench/langgraph_step.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import cpu_s, machine, median, write_json


class State(TypedDict, total=False):
    n: int


def build(steps: int) -> Any:
    from langgraph.graph import END, START, StateGraph

    async def node(state: State) -> dict[str, Any]:
        return {"n": state["n"] + 1}

    async def route(state: State) -> str:
        return END if state["n"] >= steps else "node"

    g = StateGraph(State)
    g.add_node("node", node)
    g.add_edge(START, "node")
    g.add_conditional_edges("node", route, ["node", END])
    return g.compile()


async def measure(graph: Any, episodes: int, steps: int) -> float:
    c0 = cpu_s()
    for _ in range(episodes):
        async for _ in graph.astream({"n": 0}, stream_mode="values"):
            pass
    return (cpu_s() - c0) / (episodes * steps) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.smoke:
        args.episodes, args.runs = 50, 1
    print(f"machine: {machine()}", flush=True)
    graph = build(args.steps)
    asyncio.run(measure(graph, 50, args.steps))  # warm up
    runs = [asyncio.run(measure(graph, args.episodes, args.steps)) for _ in range(args.runs)]
    print(f"LangGraph: {median(runs):.3f} ms CPU per superstep (median of {len(runs)})")
    write_json(args.out, {"steps": args.steps, "ms_per_step": median(runs), "runs": runs})


if __name__ == "__main__":
    main()
