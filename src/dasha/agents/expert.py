"""The scripted search for focus that A_L's pre-training imitates, and that the bench runs
as the ``dfd`` baseline.

It first takes the same probe frames in every search (lens positions given as fractions of
the lens's range), then goes to where it believes focus is; if the search goes on there (the
target not detected, or depth from defocus puts focus elsewhere) it brackets that position
as the peak rule needs: one frame less than a bracket below, one above, then the position
again.

Where it believes focus is: where depth from defocus puts it over the search's frames
(``envs.focus.FocusSearch.focus_estimate``, which A_L observes too), or, for the
``"truth"`` expert of pre-training only, the simulator's in-focus position. Believing the
estimate, the search needs no ground truth: it is an autofocus of its own (depth from
defocus with the detector's stop), the classical method nearest to what A_L learns.
"""

from __future__ import annotations

from dasha.envs.focus import FocusSearch


def expert_target(
    positions: list[float],
    focus: float,
    bracket: float,
    probes: tuple[float, ...] = (),
    centre_first: bool = False,
) -> float:
    """The expert's next lens position (fraction of the range) given where this search has
    been and where focus is. Move ``i`` (the factory frame is ``positions[0]``) goes to
    ``probes[i - 1]`` while there are probes left; then the centre is the frame nearest
    focus within half a bracket (in focus), or focus itself while there is none.

    For the peak rule the expert takes the missing sides of the bracket around the centre
    first (0.9 bracket away, inside it after rounding), below then above, and the centre
    last: the rule then ends the search on the in-focus frame with no move back to it (one
    move fewer than centre first). For the defocus rule (``centre_first``) it goes to focus
    first, where that rule can end the search at once, and brackets it only if the search
    goes on there."""
    if len(positions) <= len(probes):
        return probes[len(positions) - 1]
    near = [p for p in positions if abs(p - focus) <= 0.5 * bracket]
    if centre_first and not near:
        return focus
    centre = min(near, key=lambda p: abs(p - focus)) if near else focus
    below = any(centre - bracket <= p < centre for p in positions)
    above = any(centre < p <= centre + bracket for p in positions)
    if not below:
        return max(centre - 0.9 * bracket, 0.0)
    if not above:
        return min(centre + 0.9 * bracket, 1.0)
    return centre  # bracketed: the rule ends the search here


def believed_focus(search: FocusSearch, truth: float | None = None) -> float:
    """Where the expert puts focus: the truth when given (pre-training's ``"truth"``
    expert), else depth from defocus's estimate; before two lens positions differ there is
    no estimate, and the truth or the middle of the range stands in."""
    if truth is not None:
        return truth
    estimate = search.focus_estimate()
    return 0.5 if estimate is None else estimate.position


def expert_move(
    search: FocusSearch, probes: tuple[float, ...] = (), truth: float | None = None
) -> float:
    """The expert's next lens position for ``search`` (a fraction of the lens's range)."""
    config = search.config
    return expert_target(
        search.memory.positions,
        believed_focus(search, truth),
        config.peak_bracket,
        probes,
        centre_first=config.stop_rule == "defocus",
    )
