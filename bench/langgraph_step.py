"""LangGraph's own CPU per superstep, for scale: a one-node graph whose async node and router
loop ``--steps`` times (``astream``, no checkpointer), run ``--episodes`` times. Two routers,
alternating: a plain async function, which LangGraph wraps in a traced run on every step, and
the untraced Runnable that clinsim's episode graph uses (``simulator.graph._Router``'s way).

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


def build(steps: int, *, traced: bool) -> Any:
    from langchain_core.runnables import Runnable
    from langgraph.graph import END, START, StateGraph

    async def node(state: State) -> dict[str, Any]:
        return {"n": state["n"] + 1}

    def where(state: State) -> str:
        return END if state["n"] >= steps else "node"

    async def route(state: State) -> str:
        return where(state)

    class Router(Runnable[State, str]):
        name = "route"

        def invoke(self, input: State, config: Any = None, **kw: Any) -> str:
            return where(input)

        async def ainvoke(self, input: State, config: Any = None, **kw: Any) -> str:
            return where(input)

    g = StateGraph(State)
    g.add_node("node", node)
    g.add_edge(START, "node")
    g.add_conditional_edges("node", route if traced else Router(), ["node", END])
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
    graphs = {
        "function": build(args.steps, traced=True),
        "runnable": build(args.steps, traced=False),
    }
    runs: dict[str, list[float]] = {k: [] for k in graphs}
    for g in graphs.values():
        asyncio.run(measure(g, 50, args.steps))  # warm up
    for _ in range(args.runs):
        for k, g in graphs.items():  # alternating, so drift falls on both
            runs[k].append(asyncio.run(measure(g, args.episodes, args.steps)))
    plain, untraced = median(runs["function"]), median(runs["runnable"])
    print(f"LangGraph: {plain:.3f} ms CPU per superstep with a plain router function, "
          f"{untraced:.3f} ms with an untraced Runnable router ({untraced / plain:.0%}; median "
          f"of {args.runs})")  # fmt: skip
    write_json(args.out, {"steps": args.steps, "ms_per_step": plain,
                          "ms_per_step_untraced": untraced, "runs": runs})  # fmt: skip


if __name__ == "__main__":
    main()
