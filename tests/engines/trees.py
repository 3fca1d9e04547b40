"""Checks shared by the engines that evaluate token trees (whole-value scoring, issue 17)."""

from __future__ import annotations

import numpy as np

from deskloop.engines.decoding import Logits, PrefixCachingEngine

PROMPT = 'Screen: e1 button Cancel, e2 button OK, e12 label Save?\nClick OK. The id is "'
VALUES = ("e1", "e2", "e12")


def tree_against_one_by_one(
    engine: PrefixCachingEngine,
) -> tuple[dict[tuple[int, ...], tuple[Logits, Logits]], Logits, Logits]:
    """Each value prefix's logits from one tree and from evaluating it alone, then the
    logits after the kept path e12 plus a quote, and after writing the same tokens afresh."""
    prompt = engine.tokenize(PROMPT)
    values = [engine.tokenize(value) for value in VALUES]
    engine._forget_from(0)
    engine._extend(prompt)
    alone: dict[tuple[int, ...], Logits] = {}
    for value in values:
        for length in range(1, len(value) + 1):
            engine._forget_from(len(prompt))
            alone[tuple(value[:length])] = engine._extend(value[:length]).copy()
    engine._forget_from(len(prompt))
    # The tree of e, e1, e2, e12: each node after its parent.
    nodes: dict[tuple[int, ...], int] = {}
    tokens: list[int] = []
    parents: list[int] = []
    for value in values:
        for length in range(1, len(value) + 1):
            key = tuple(value[:length])
            if key not in nodes:
                nodes[key] = len(tokens)
                tokens.append(value[length - 1])
                parents.append(nodes.get(key[:-1], -1))
    rows = engine._tree_rows(tokens, parents)
    assert rows is not None, "this engine should evaluate trees"
    pairs = {key: (rows[index].copy(), alone[key]) for key, index in nodes.items()}
    longest = values[2]
    path = [nodes[tuple(longest[: length + 1])] for length in range(len(longest))]
    engine._commit_path(path, longest)
    quote = engine.tokenize('"')
    kept = engine._extend(quote).copy()
    engine._forget_from(len(prompt))
    afresh = engine._extend(longest + quote).copy()
    return pairs, kept, afresh


def same_choice(first: Logits, second: Logits) -> bool:
    """The same best token and nearly the same scores (llama.cpp's flash attention sums
    in another order when the cache holds its cells in another order)."""
    return bool(
        int(np.argmax(first)) == int(np.argmax(second)) and np.corrcoef(first, second)[0, 1] > 0.999
    )
