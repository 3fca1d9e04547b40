"""The decode loop shared by the in-process engines: prefix reuse, guide masking, exact sampling.

An engine supplies two primitives (drop cached positions, evaluate tokens into logits),
and may supply a third (evaluate a tree of tokens in one batch); everything the server
relies on (what is reused, when `cancel` is checked, how a token is chosen, how a call
is closed when the tokens run out, how a few whole values are scored, what a grammar
forces) lives here once, so llama.cpp and MLX behave the same.

Fast-forward (issue 21): where a `ForcingGuide` says the grammar forces the next tokens
(`{"name": "`, the rest of a name, a key, `}</tool_call>`), they are written without the
model and evaluated in one batch with the token chosen before them, logits for the last
position only; a forced opener joins the prompt's prefill; once only an end token can
follow, no pass is spent to choose it. llguidance writes forced text as the vocabulary
tokenizes it and leaves out a last token that a longer one could span, so the model still
chooses there (the tests compare answers with it on and off).

Prompt drafts (issue 21, `prompt_drafts`): after a choice and what the grammar forces, the
tokens that followed the newest few tokens in the prompt (engines/drafts.py), cut to what
the guide accepts, are evaluated in the same batch with logits for each; a drafted token
comes out where the sampler would have chosen it there (exactly: temperature 0 compares
with the choice, sampling accepts it with its probability and else draws from the rest),
and the cache is cut back after the last one kept. A draft never passes a point where the
loop does more than choose (a forced run, a scored choice, a planned closing, max_tokens).
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from deskloop.engines.base import (
    CallGuide,
    DecodeStats,
    DraftingGuide,
    EngineError,
    ForcingGuide,
    LocalEngine,
    PrefillReport,
    Sampling,
    TokenGuide,
    ValueCandidates,
)
from deskloop.engines.drafts import DraftLength, PromptLookup

Logits = npt.NDArray[np.float32]

# From this many tokens before max_tokens on, an open call's closing is planned each step.
CLOSING_LOOKAHEAD = 48
# The most tokens a closing writes; a grammar that needs more is left to max_tokens.
CLOSING_LIMIT = 256


def common_prefix_length(first: Sequence[int], second: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    limit = min(len(first), len(second))
    for index in range(limit):
        if first[index] != second[index]:
            return index
    return limit


class TokenSampler:
    """Chooses the next token exactly as asked: temperature 0 is argmax; else top-k, then top-p.

    Order as in Hugging Face and vLLM: logits are divided by the temperature, cut to the
    top k, then to the smallest set whose probability reaches top_p.
    """

    def __init__(self, sampling: Sampling) -> None:
        self._temperature = sampling.temperature
        self._top_k = sampling.top_k if sampling.top_k and sampling.top_k > 0 else None
        self._top_p = sampling.top_p if sampling.top_p is not None and sampling.top_p < 1 else None
        self._random = np.random.default_rng(sampling.seed)

    def choose(
        self,
        logits: Logits,
        allowed: npt.NDArray[np.bool_] | None = None,
        excluded: int | None = None,
    ) -> int:
        """The next token from one position's logits, only among `allowed` when given.

        `excluded` is a drafted token the model turned down here (`accepts`): sampling then
        draws from the rest of the same distribution, renormalized; greedy never chose it.
        """
        scores = self._masked(logits, allowed)
        if self._temperature <= 0:
            return int(np.argmax(scores))
        candidates, probabilities = self._distribution(scores)
        if excluded is not None:
            kept = candidates != excluded
            if probabilities[kept].sum() > 0:
                candidates, probabilities = candidates[kept], probabilities[kept]
        cumulative = np.cumsum(probabilities)
        draw = self._random.random() * cumulative[-1]
        position = min(int(np.searchsorted(cumulative, draw, side="right")), len(candidates) - 1)
        return int(candidates[position])

    def accepts(
        self,
        logits: Logits,
        token: int,
        allowed: Callable[[], npt.NDArray[np.bool_] | None],
    ) -> bool:
        """Whether a drafted `token` comes out here: at temperature 0 where it is the choice;
        sampling, with the probability `choose` gives it (a turned-down token is then
        excluded from the draw here, which leaves the distribution exactly as it was).
        `allowed` gives the guide's mask, asked only where needed."""
        if self._temperature <= 0:
            if int(np.argmax(logits)) == token:
                return True  # the best of all tokens, and the grammar accepted it
            mask = allowed()
            return mask is not None and int(np.argmax(self._masked(logits, mask))) == token
        candidates, probabilities = self._distribution(self._masked(logits, allowed()))
        chance = float(probabilities[candidates == token].sum())
        return self._random.random() < chance

    def _masked(self, logits: Logits, allowed: npt.NDArray[np.bool_] | None) -> Logits:
        scores = np.asarray(logits, dtype=np.float32)
        if allowed is None:
            return scores
        mask = _fit_mask(allowed, scores.shape[0])
        if not mask.any():
            raise EngineError("the token guide allowed no token of this model's vocabulary")
        masked: Logits = np.where(mask, scores, np.float32(-np.inf))
        return masked

    def _distribution(self, scores: Logits) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """The tokens sampling may choose and their probabilities."""
        candidates: npt.NDArray[np.intp] = np.arange(scores.shape[0])
        if self._top_k is not None and self._top_k < scores.shape[0]:
            candidates = np.argpartition(scores, -self._top_k)[-self._top_k :]
        tempered = scores[candidates].astype(np.float64) / self._temperature
        probabilities = np.exp(tempered - tempered.max())
        probabilities /= probabilities.sum()
        if self._top_p is not None:
            order = np.argsort(-probabilities, kind="stable")
            cumulative = np.cumsum(probabilities[order])
            keep = int(np.searchsorted(cumulative, self._top_p)) + 1
            kept = order[:keep]
            candidates, probabilities = candidates[kept], probabilities[kept]
        return candidates, probabilities

    def choose_among(self, scores: npt.NDArray[np.float64]) -> int:
        """An index into `scores` (log-probabilities of whole values): argmax at temperature 0,
        else drawn in proportion to exp(score / temperature)."""
        if self._temperature <= 0:
            return int(np.argmax(scores))
        tempered = scores / self._temperature
        weights = np.exp(tempered - tempered.max())
        cumulative = np.cumsum(weights)
        draw = self._random.random() * cumulative[-1]
        return min(int(np.searchsorted(cumulative, draw, side="right")), len(scores) - 1)


class NativeSampler(Protocol):
    """A library's own sampler for unguided generation: chooses from the last logits in place."""

    def sample(self) -> int: ...

    def close(self) -> None: ...


def _fit_mask(allowed: npt.NDArray[np.bool_], size: int) -> npt.NDArray[np.bool_]:
    if allowed.shape[0] >= size:
        return allowed[:size]
    return np.concatenate([allowed, np.zeros(size - allowed.shape[0], dtype=np.bool_)])


def _no_mask() -> None:
    return None


@dataclass
class _Drafts:
    """One answer's prompt drafts: where they are looked up, and how long the next may be."""

    lookup: PromptLookup
    length: DraftLength


def prefill_pieces(
    start: int, prompt_end: int, end: int, chunk: int, exact: int
) -> Iterator[tuple[int, int]]:
    """The pieces [from, to) in which uncached positions `start`..`end` are evaluated: the
    prompt's (up to `prompt_end`) at most `chunk` each, then what the grammar forced after
    it at most `exact` each, as decoding evaluates forced tokens."""
    for first in range(start, prompt_end, chunk):
        yield first, min(first + chunk, prompt_end)
    for first in range(max(start, prompt_end), end, exact):
        yield first, min(first + exact, end)


class PrefixCachingEngine(LocalEngine):
    """A local engine whose KV cache holds one sequence, reused across calls up to the shared prefix."""

    prefill_chunk: int = 512  # tokens evaluated between two checks of `cancel`
    # The most tokens one batch may hold for each of its rows to come out exactly as
    # evaluating them one at a time would (0: any batch does). Forced tokens and drafts stay
    # within it, so that an answer at temperature 0 is the same with fast-forward or drafts
    # on or off. A wider batch rounds differently, but the same for a row whatever else the
    # batch holds: a prompt whose last rows a wide batch evaluated is evaluated so again
    # when it is asked again (`_prefill_start`).
    exact_batch: int = 0
    # The most tokens one prompt draft proposes (issue 21); 0: this engine does not draft.
    draft_limit: int = 8

    def __init__(self) -> None:
        self._cached_tokens: list[int] = []  # the tokens whose keys and values the cache holds
        # The cached positions [from, to) the last prefill batch wider than `_exact` evaluated.
        self._wide_rows: tuple[int, int] | None = None
        self._closed = False
        self.forward_passes = 0  # every evaluation since load, prefill chunks and trees included

    def close(self) -> None:
        """Free the model; later calls raise EngineError instead of touching freed memory."""
        self._closed = True
        self._release()
        self._cached_tokens.clear()

    @abstractmethod
    def _release(self) -> None:
        """Free the library's model and cache."""

    def _require_open(self) -> None:
        if self._closed:
            raise EngineError(f"the {self.name} engine was closed; load the model again")

    @abstractmethod
    def _drop_cache_after(self, keep: int) -> int:
        """Forget every cached position from `keep` on; return how many remain.

        That is `keep`, or 0 where the cache cannot be cut (recurrent state, sliding windows)
        and was emptied instead.
        """

    @abstractmethod
    def _evaluate(self, tokens: Sequence[int]) -> Logits:
        """Run `tokens` after the cached ones; return the logits of the last one."""

    def _evaluate_tree(self, tokens: Sequence[int], parents: Sequence[int]) -> Logits | None:
        """Evaluate a tree of tokens after the cached ones in one batch: token i follows
        token `parents[i]` (an earlier index), or the last cached token where that is -1.
        Returns one row of logits per token, or None where this engine cannot.

        `_keep_tree_path` is always called next.
        """
        return None

    def _keep_tree_path(self, path: Sequence[int]) -> None:
        """Keep the tree tokens at `path` (indices from a root down) as the continuation
        of the cached sequence, and forget the rest of the tree."""

    def _evaluate_rows(self, tokens: Sequence[int], first: int) -> Logits:
        """Run `tokens` after the cached ones (all kept in the cache); return the logits of
        each position from `first` on, one row each (prompt drafts are verified from them).

        This default evaluates them as a tree of one branch."""
        parents = list(range(-1, len(tokens) - 1))
        rows = self._evaluate_tree(tokens, parents)
        if rows is None:
            raise EngineError(f"the {self.name} engine cannot evaluate {len(tokens)} tokens' rows")
        self._keep_tree_path(range(len(tokens)))
        return rows[first:]

    @property
    def _exact(self) -> int:
        return min(self.exact_batch or self.prefill_chunk, self.prefill_chunk)

    def _can_cut_drafts(self) -> bool:
        """Whether the cache can be cut back after a draft (not a recurrent state)."""
        return True

    def _request_starts(self) -> None:
        """A request's decoding begins; the engine may have waited for it (free cores are
        judged afresh then)."""

    def _prefill_start(self, shared: int, prompt_end: int) -> int:
        """Where a reproducible answer's prefill starts: at `shared`, or earlier where the
        prompt's last rows were evaluated in a wide batch and would now be in a narrow one.

        A request asked again finds all but its last token cached. Evaluated alone, that
        token's logits differed from the first time's by up to 0.45 and changed a greedy
        answer; a wide batch of the last `_exact + 1` rows gives the same logits again.
        """
        wide = self._wide_rows
        first = prompt_end - (self._exact + 1)
        if wide is None or first < 0 or not shared < prompt_end <= shared + self._exact:
            return shared
        covered = wide[0] <= first and shared <= wide[1]  # rows first..shared were wide
        return first if covered else shared

    def _native_sampler(self, sampling: Sampling) -> NativeSampler | None:
        """The library's sampler for `sampling`, used when no guide steers; None: TokenSampler."""
        return None

    def generate(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        *,
        cancel: threading.Event,
        guide: TokenGuide | None = None,
        on_prefill: Callable[[PrefillReport], None] | None = None,
    ) -> Iterator[int]:
        self._require_open()
        prompt = list(prompt)
        context_window = self.info.context_window
        if not prompt:
            raise EngineError("cannot generate from an empty prompt")
        if len(prompt) > context_window:
            raise EngineError(
                f"prompt is too long: {len(prompt)} tokens > {context_window} maximum"
            )
        return self._decode(prompt, sampling, cancel, guide, on_prefill)

    def _decode(
        self,
        prompt: list[int],
        sampling: Sampling,
        cancel: threading.Event,
        guide: TokenGuide | None,
        on_prefill: Callable[[PrefillReport], None] | None,
    ) -> Iterator[int]:
        started = time.perf_counter()
        self._request_starts()
        calls = guide if isinstance(guide, CallGuide) else None
        forcing = guide if self.fast_forward and isinstance(guide, ForcingGuide) else None
        stats = self.last_decode = DecodeStats()
        context_window = self.info.context_window
        # What the grammar forces before the model's first choice (a forced call's opener,
        # its name when only one tool is allowed) is evaluated with the prompt.
        opener: list[int] = []
        if forcing is not None:
            opener = self._take_forced(
                forcing, calls, context_window - len(prompt), sampling.max_tokens
            )
        sequence = prompt + opener
        # Where any batch rounds alike, the opener joins the prompt's batches; otherwise it
        # is evaluated as decoding would evaluate it, fast-forward on or off.
        prompt_end = len(prompt) if self.exact_batch else len(sequence)
        # Keep at least the last token to evaluate: its logits choose the first token.
        shared = min(common_prefix_length(self._cached_tokens, sequence), len(sequence) - 1)
        if sampling.temperature == 0 or sampling.seed is not None:
            shared = self._prefill_start(shared, prompt_end)
        self._forget_from(shared)
        reused = len(self._cached_tokens)
        exact = self._exact
        logits: Logits | None = None
        pieces = prefill_pieces(reused, prompt_end, len(sequence), self.prefill_chunk, exact)
        for start, end in pieces:
            if cancel.is_set():
                return
            logits = self._extend(sequence[start:end])
            if end - start > exact:
                self._wide_rows = (start, end)
        assert logits is not None
        stats.passes = 0  # the prefill is not decoding
        if on_prefill is not None:
            on_prefill(
                PrefillReport(len(prompt), min(reused, len(prompt)), time.perf_counter() - started)
            )
        sampler = TokenSampler(sampling)
        native = self._native_sampler(sampling) if guide is None else None
        drafts = self._drafts_for(guide, sequence)
        stops = self.stop_token_ids
        produced = 0
        for token in opener:
            if cancel.is_set():
                return
            yield token
            produced += 1
            stats.tokens += 1
        stats.forced += len(opener)
        if forcing is not None and forcing.is_stopped():
            return
        planned_until = 0  # no need to plan a closing before this many tokens are out
        # A drafted token the model turned down at this position (sampling draws from the rest).
        excluded: int | None = None
        library_logits = True  # `logits` are the library's last: its own sampler may choose
        try:
            while True:
                if cancel.is_set():
                    return
                left = sampling.max_tokens - produced
                if calls is not None and (calls.close_requested or produced >= planned_until):
                    close, wait = self._closing_plan(calls, left)
                    if close:
                        yield from self._close(calls, sampler, logits, cancel, left)
                        return
                    planned_until = produced + wait
                if left <= 0:
                    return
                # The tokens chosen this step, and those of them not evaluated yet.
                chosen: list[int]
                unevaluated: list[int]
                whole = None
                if calls is not None:
                    candidates = calls.value_choice()
                    if candidates is not None:
                        whole = self._choose_whole(candidates, logits, sampler)
                if whole is not None:
                    assert calls is not None
                    chosen, unevaluated, after = whole
                    for token in chosen:
                        calls.accept(token)
                    if after is not None:
                        logits = after  # the value's last token was evaluated in the tree
                else:
                    if native is not None and library_logits:
                        token = native.sample()
                    else:
                        allowed = guide.allowed_tokens() if guide else None
                        token = sampler.choose(logits, allowed, excluded)
                    if guide is not None:
                        guide.accept(token)
                    if token in stops:
                        return
                    chosen = unevaluated = [token]
                excluded = None
                for token in chosen:
                    yield token
                    produced += 1
                    stats.tokens += 1
                if drafts is not None:
                    drafts.lookup.extend(chosen)
                pending = list(unevaluated)
                # What the grammar forces next, then a draft verified with them, until the
                # model has to choose again.
                while True:
                    if forcing is not None:
                        if cancel.is_set():
                            return
                        room = context_window - len(self._cached_tokens) - len(pending)
                        left = sampling.max_tokens - produced
                        forced = self._take_forced(forcing, calls, room, left)
                        for token in forced:
                            if cancel.is_set():
                                return
                            yield token
                            produced += 1
                            stats.tokens += 1
                            stats.forced += 1
                        if forcing.is_stopped():
                            return  # only an end token can follow: no pass to choose it
                        if forced:
                            excluded = None  # the next choice is at another position
                        pending.extend(forced)
                        if drafts is not None:
                            drafts.lookup.extend(forced)
                    if len(self._cached_tokens) + len(pending) > context_window or cancel.is_set():
                        return
                    if produced >= sampling.max_tokens and not (
                        calls is not None and calls.required and not calls.is_complete()
                    ):
                        return
                    if not pending:
                        break  # a whole value's logits, or a draft's
                    draft: list[int] = []
                    if drafts is not None:
                        # Every drafted token stands for a step of the loop above: none may
                        # reach where a closing is planned, max_tokens, or past the context.
                        limit = min(
                            sampling.max_tokens - produced,
                            context_window - len(self._cached_tokens) - len(pending),
                            self._exact - len(pending),
                        )
                        if calls is not None:
                            limit = (
                                0 if calls.close_requested else min(limit, planned_until - produced)
                            )
                        draft = self._propose(drafts, guide, limit)
                    if not draft:
                        # A forced run longer than a batch (a long fixed text) goes in pieces.
                        for start in range(0, len(pending), self._exact):
                            logits = self._extend(pending[start : start + self._exact])
                        library_logits = True
                        break
                    verified = yield from self._verify(
                        pending, draft, sampler, guide, calls, cancel
                    )
                    if verified is None:
                        return  # cancelled
                    logits, taken, excluded = verified
                    library_logits = False
                    produced += taken
                    assert drafts is not None
                    drafts.lookup.extend(draft[:taken])
                    drafts.length.update(len(draft), taken)
                    pending = []
        finally:
            if native is not None:
                native.close()

    # -- prompt drafts (issue 21): tokens proposed from the prompt, verified in one batch --

    def _drafts_for(self, guide: TokenGuide | None, sequence: list[int]) -> _Drafts | None:
        """The lookup for this answer's drafts, or None where there are none: drafts off,
        an engine that cannot verify them, a guide that cannot judge them."""
        if not self.prompt_drafts or self.draft_limit <= 0 or not self._can_cut_drafts():
            return None
        if guide is not None and not isinstance(guide, DraftingGuide):
            return None
        return _Drafts(PromptLookup(sequence), DraftLength(self.draft_limit))

    def _propose(self, drafts: _Drafts, guide: TokenGuide | None, limit: int) -> list[int]:
        """The next draft: at most `limit` tokens, none an end token, all the guide accepts."""
        draft = drafts.lookup.propose(min(limit, drafts.length.now))
        stops = self.stop_token_ids
        for index, token in enumerate(draft):
            if token in stops:
                draft = draft[:index]
                break
        if draft and isinstance(guide, DraftingGuide):
            draft = draft[: guide.draft_length(draft)]
        return draft

    def _verify(
        self,
        pending: list[int],
        draft: list[int],
        sampler: TokenSampler,
        guide: TokenGuide | None,
        calls: CallGuide | None,
        cancel: threading.Event,
    ) -> Generator[int, None, tuple[Logits, int, int | None] | None]:
        """Evaluate `pending` and `draft` in one batch and yield the drafted tokens the model
        would have chosen itself, in order, up to the first it would not.

        Returns the logits after the last token kept, how many drafted tokens were kept, and
        the one turned down (None where none was); None where `cancel` stopped it. The
        cache keeps `pending` and the tokens kept.
        """
        stats = self.last_decode
        assert stats is not None
        base = len(self._cached_tokens)
        rows = self._extend_rows(pending + draft, len(pending) - 1)
        stats.drafted += len(draft)
        taken = 0
        turned_down: int | None = None
        allowed = guide.allowed_tokens if guide is not None else _no_mask
        try:
            for index, token in enumerate(draft):
                if calls is not None and calls.close_requested:
                    break  # the loop closes the call from here, as it would without drafts
                if not sampler.accepts(rows[index], token, allowed):
                    turned_down = token
                    break
                if cancel.is_set():
                    return None
                if guide is not None:
                    guide.accept(token)
                yield token
                taken += 1
                stats.accepted += 1
                stats.tokens += 1
        finally:
            # Also where the reader stopped (the generator closed at a yield).
            self._cut_draft(base + len(pending) + taken)
        # A copy: a library's rows may be a view of a buffer the next evaluation reuses.
        return np.array(rows[taken]), taken, turned_down

    def _extend_rows(self, tokens: list[int], first: int) -> Logits:
        """Evaluate `tokens`, record them as cached, and return the logits of each position
        from `first` on; on failure forget the whole cache."""
        self._count_pass()
        with self._failure_forgets_cache():
            rows = self._evaluate_rows(tokens, first)
        self._cached_tokens.extend(tokens)
        return rows

    def _cut_draft(self, keep: int) -> None:
        """Forget the drafted tokens after `keep`; an engine that could not cut its cache
        back there (it was emptied) drafts no more."""
        if keep >= len(self._cached_tokens):
            return
        kept = self._drop_cache_after(keep)
        del self._cached_tokens[kept:]
        if kept != keep:
            self.draft_limit = 0
            raise EngineError(f"the {self.name} engine could not cut a draft from its cache")

    def _take_forced(
        self, forcing: ForcingGuide, calls: CallGuide | None, room: int, left: int
    ) -> list[int]:
        """The tokens the guide forces next, accepted, at most `room` (what the context
        holds) and `left` (max_tokens), except that a call that must still arrive is
        written whole, as closing it would (issue 17). An end token is never written."""
        limit = room if calls is not None and calls.required else min(room, left)
        if limit <= 0:
            return []
        forced = forcing.forced_tokens()[:limit]
        stops = self.stop_token_ids
        for index, token in enumerate(forced):
            if token in stops:
                forced = forced[:index]
                break
        for token in forced:
            forcing.accept(token)
        return forced

    def _closing_plan(self, calls: CallGuide, left: int) -> tuple[bool, int]:
        """Whether what the guide has open must be closed now to end within `left` tokens,
        and how many tokens may pass before asking again.

        A required call is closed even where that takes more than `left`: a forced
        tool_choice that ends without a call is the worse answer (issue 17). The need is
        worked out again halfway to where it would no longer fit: a token rarely opens
        more than a key or a bracket (working it out takes about 0.5 ms here).
        """
        if calls.close_requested:
            return not calls.is_complete(), 0
        if left > CLOSING_LOOKAHEAD:
            return False, left - CLOSING_LOOKAHEAD
        need = calls.closing_need(CLOSING_LIMIT)
        if need is None:
            return False, 1
        if need < left:
            return False, max(1, (left - need) // 2)
        return calls.required or need == left, 1

    def _close(
        self,
        calls: CallGuide,
        sampler: TokenSampler,
        logits: Logits,
        cancel: threading.Event,
        left: int,
    ) -> Iterator[int]:
        """Close what is open: the guide writes what it can (forced tokens, a quote, a brace,
        the end marker), the model chooses only where the grammar leaves a choice."""
        limit = CLOSING_LIMIT if calls.required else left
        written = 0
        unevaluated: list[int] = []
        while written < limit and not calls.is_complete():
            if cancel.is_set():
                return
            tokens = calls.closing_step()
            written_by_guide = bool(tokens)
            if not tokens:
                if unevaluated:
                    if len(self._cached_tokens) + len(unevaluated) > self.info.context_window:
                        return
                    logits = self._extend(unevaluated)
                    unevaluated = []
                allowed = calls.allowed_tokens()
                if allowed is None:
                    return  # the guide gave up (a token outside its grammar): nothing to close
                tokens = [sampler.choose(logits, allowed)]
            stats = self.last_decode
            for token in tokens:
                calls.accept(token)
                yield token
                if stats is not None:
                    stats.tokens += 1
            if stats is not None and written_by_guide:
                stats.forced += len(tokens)  # evaluated with the next choice's pass, if any
            unevaluated.extend(tokens)
            written += len(tokens)

    def _choose_whole(
        self, candidates: ValueCandidates, logits: Logits, sampler: TokenSampler
    ) -> tuple[list[int], list[int], Logits | None] | None:
        """One of a few whole values, chosen by the model's score of each (issue 17).

        The values' tokens form a tree (shared starts once); the tokens that have a token
        after them are evaluated in one batch, so a choice among e1..e40 costs one pass of
        a few tokens where token by token a small model picks an id by its first digit.
        A value's score is the log-probability of its tokens, plus that of ending there
        where another value goes on (e1 beside e12). Returns the value's tokens, those of
        them still to evaluate (the caller evaluates them with what the grammar forces
        next), and the logits after the value where none are; None where the engine
        cannot evaluate a tree.
        """
        tree = _ValueTree(candidates.sequences)
        inner = tree.inner()  # the only tokens whose logits are needed
        rows: Logits | None = None
        if inner:
            # A copy: a library's logits may be a view of the buffer the tree's pass refills
            # (llama.cpp's are), and the values' first tokens are scored on them.
            logits = np.array(logits)
            row_of = {node: row for row, node in enumerate(inner)}
            rows = self._tree_rows(
                [tree.tokens[node] for node in inner],
                [row_of.get(tree.parents[node], -1) for node in inner],
            )
            if rows is None:
                return None
        log_softmax = _LogSoftmax(logits, rows, inner)
        scores = np.zeros(len(tree.ends), dtype=np.float64)
        for index, end in enumerate(tree.ends):
            for node in tree.path(end):
                scores[index] += log_softmax.of(tree.parents[node], tree.tokens[node])
            if end in log_softmax.rows:
                scores[index] += log_softmax.mass(end, candidates.ends)
        path = tree.path(tree.ends[sampler.choose_among(scores)])
        # Inner nodes are a prefix of any path: those were evaluated and are kept.
        kept = [log_softmax.rows[node] for node in path if node in log_softmax.rows]
        value = [tree.tokens[node] for node in path]
        self._commit_path(kept, value[: len(kept)])
        if rows is not None and len(kept) == len(path):
            return value, [], rows[kept[-1]]  # the value's last token was evaluated in the tree
        return value, value[len(kept) :], None

    def _tree_rows(self, tokens: list[int], parents: list[int]) -> Logits | None:
        if len(self._cached_tokens) + len(tokens) > self.info.context_window:
            return None
        with self._failure_forgets_cache():
            rows = self._evaluate_tree(tokens, parents)
        if rows is not None:
            self._count_pass()
        return rows

    def _commit_path(self, path: list[int], tokens: list[int]) -> None:
        with self._failure_forgets_cache():
            self._keep_tree_path(path)
        self._cached_tokens.extend(tokens)

    def _extend(self, tokens: list[int]) -> Logits:
        """Evaluate `tokens` and record them as cached; on failure forget the whole cache."""
        self._count_pass()
        with self._failure_forgets_cache():
            logits = self._evaluate(tokens)
        self._cached_tokens.extend(tokens)
        return logits

    @contextmanager
    def _failure_forgets_cache(self) -> Iterator[None]:
        """A failed evaluation leaves the cache in an unknown state: forget all of it, and
        report the library's error as an EngineError."""
        try:
            yield
        except EngineError:
            self._reset_cache()
            raise
        except (RuntimeError, ValueError, OSError) as exc:
            self._reset_cache()
            raise EngineError(f"the {self.name} engine failed while generating: {exc}") from exc

    def _count_pass(self) -> None:
        self.forward_passes += 1
        if self.last_decode is not None:
            self.last_decode.passes += 1

    def _reset_cache(self) -> None:
        """After a failure the cache may hold positions the token list does not: drop all."""
        self._drop_cache_after(0)
        self._cached_tokens.clear()
        self._wide_rows = None

    def _forget_from(self, keep: int) -> None:
        if keep < len(self._cached_tokens):
            del self._cached_tokens[self._drop_cache_after(keep) :]
        kept = len(self._cached_tokens)
        if self._wide_rows is not None:
            start, end = self._wide_rows
            self._wide_rows = (start, min(end, kept)) if start < kept else None


class _ValueTree:
    """Values' tokens as a tree, each shared start once: node i is `tokens[i]` after node
    `parents[i]` (-1: after what came before the values); value j ends at node `ends[j]`."""

    def __init__(self, values: list[list[int]]) -> None:
        self.tokens: list[int] = []
        self.parents: list[int] = []
        self.ends: list[int] = []
        nodes: dict[tuple[int, ...], int] = {}
        for value in values:
            parent = -1
            for depth, token in enumerate(value):
                key = tuple(value[: depth + 1])
                if key not in nodes:
                    nodes[key] = len(self.tokens)
                    self.tokens.append(token)
                    self.parents.append(parent)
                parent = nodes[key]
            self.ends.append(parent)

    def inner(self) -> list[int]:
        """Nodes with a node after them, in order (a parent before its children)."""
        return sorted({parent for parent in self.parents if parent >= 0})

    def path(self, node: int) -> list[int]:
        """The nodes from a root down to `node`."""
        path = []
        while node >= 0:
            path.append(node)
            node = self.parents[node]
        return path[::-1]


class _LogSoftmax:
    """Log-probabilities from the logits before a tree (`root`) and at its inner nodes."""

    def __init__(self, root: Logits, rows: Logits | None, inner: list[int]) -> None:
        self.rows = {node: index for index, node in enumerate(inner)}
        self._root = root
        self._tree = rows
        self._norms: dict[int, float] = {}

    def _row(self, node: int) -> Logits:
        if node < 0:
            return self._root
        assert self._tree is not None
        row: Logits = self._tree[self.rows[node]]
        return row

    def _norm(self, node: int) -> float:
        norm = self._norms.get(node)
        if norm is None:
            row = self._row(node).astype(np.float64)
            top = float(row.max())
            norm = self._norms[node] = top + float(np.log(np.exp(row - top).sum()))
        return norm

    def of(self, node: int, token: int) -> float:
        """log P(token | the tokens up to `node`); node -1 is before the tree."""
        return float(self._row(node)[token]) - self._norm(node)

    def mass(self, node: int, tokens: npt.NDArray[np.bool_]) -> float:
        """log P(any of `tokens` | the tokens up to `node`)."""
        row = self._row(node).astype(np.float64)
        chosen = row[_fit_mask(tokens, row.shape[0])]
        if chosen.size == 0:
            return float("-inf")
        top = float(chosen.max())
        return top + float(np.log(np.exp(chosen - top).sum())) - self._norm(node)
