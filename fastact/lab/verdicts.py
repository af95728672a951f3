"""Verdicts: short sentences computed from the records, never canned.

Every word that judges comes from a threshold below, applied to a measured number; change
the numbers and the sentence changes.  The thresholds:

    backprop_grad_ratio r = ||dL/dz_1|| / ||dL/dz_L||:
        r < 1e-2      "vanishes"   (layer 1 receives under 1% of layer L's gradient)
        r < 1e-1      "shrinks"
        r <= 10       "holds"      (within a decade of 1)
        r <= 1e2      "grows"
        else          "explodes"
    a remedy against its baseline (distance from 1 in decades, |log10 r|):
        the remedy holds and the baseline does not   "rescues"
        distance down by >= 1 decade                  "helps"
        distance up by >= 1 decade                    "makes it worse"
        otherwise                                     "does not help"
      and, when both were trained and the remedy "rescues" or "helps" the ratio but trains
      worse (a lower training class, or test accuracy 0.03 or more below the baseline's),
      the sentence says so: "rescues the gradient ratio, but training is worse" (a ratio
      can rise for reasons that do not help learning: dropout's 1/(1 - p) scale on the
      units it keeps raises it while the network learns less)
    training (test accuracy a; chance c = the test accuracy of always answering the most
    frequent training class; chance loss H = the cross-entropy of predicting the class
    frequencies, which a network reaches without using its inputs; initial and final loss
    on the training set):
        non-finite loss, or final loss > 10 max(initial loss, H)   "diverges"
        a >= c + 0.1                                  "learns"
        a >= c + 0.03 or final loss <= 0.95 H         "learns slowly"
        otherwise                                     "stalls"
    (a diverged run's test accuracy is not a result: it is never named the best)
"""

from __future__ import annotations

import math

from .result import fmt

VANISH, SHRINK, GROW, EXPLODE = 1e-2, 1e-1, 1e1, 1e2
LEARN_MARGIN, SLOW_MARGIN, SLOW_LOSS = 0.1, 0.03, 0.95
DIVERGE_LOSS = 10.0
_LEARN_RANK = {"diverges": 0, "stalls": 1, "learns slowly": 2, "learns": 3}


def ratio_class(r) -> str:
    if r is None or (isinstance(r, float) and math.isnan(r)):
        return "is undefined (no gradient reaches layer L)"
    if r < VANISH:
        return "vanishes"
    if r < SHRINK:
        return "shrinks"
    if r <= GROW:
        return "holds"
    if r <= EXPLODE:
        return "grows"
    return "explodes"


def _dist(r) -> float:
    if r is None or (isinstance(r, float) and math.isnan(r)) or r <= 0:
        return math.inf
    return abs(math.log10(r))


def remedy_class(r, base) -> str:
    if ratio_class(r) == "holds" and ratio_class(base) != "holds":
        return "rescues"
    d, d0 = _dist(r), _dist(base)
    if d == d0 == math.inf:
        return "does not help"
    if d <= d0 - 1:
        return "helps"
    if d >= d0 + 1:
        return "makes it worse"
    return "does not help"


def learn_class(rec) -> str | None:
    if rec.get("final_loss") is None and not rec.get("diverged"):
        return None
    if rec.get("diverged") or not math.isfinite(rec["final_loss"]):
        return "diverges"
    top = max(rec.get("initial_loss") or 0.0, rec.get("chance_loss") or 0.0)
    if top > 0 and rec["final_loss"] > DIVERGE_LOSS * top:
        return "diverges"
    if rec["accuracy"] >= rec["chance"] + LEARN_MARGIN:
        return "learns"
    if (
        rec["accuracy"] >= rec["chance"] + SLOW_MARGIN
        or rec["final_loss"] <= SLOW_LOSS * rec["chance_loss"]
    ):
        return "learns slowly"
    return "stalls"


def _trains_worse(r, base) -> bool:
    c, cb = learn_class(r), learn_class(base)
    if c is None or cb is None:
        return False
    return _LEARN_RANK[c] < _LEARN_RANK[cb] or r["accuracy"] <= base["accuracy"] - SLOW_MARGIN


def _best_trained(rs):
    """the record with the best test accuracy among those trained without diverging"""
    ok = [r for r in rs if learn_class(r) not in (None, "diverges")]
    return max(ok, key=lambda r: r["accuracy"]) if ok else None


def _init_name(r) -> str:
    return f"auto ({r['init_scheme']})" if r["init"] == "auto" else r["init"]


def _group(records, keys):
    groups = {}
    for r in records:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return groups


def _train_phrase(r) -> str:
    c = learn_class(r)
    if c is None:
        return ""
    if c == "diverges":
        return "training diverges"
    return (
        f"loss {fmt(r['initial_loss'])} -> {fmt(r['final_loss'])}, test accuracy "
        f"{fmt(r['accuracy'])} (chance {fmt(r['chance'])}): {c}"
    )


# ---- views -------------------------------------------------------------------------


def depth_view(records) -> list:
    """Per (activation, init, variant) over the depths swept."""
    lines = []
    for (act, _, variant), rs in _group(records, ("activation", "init", "variant")).items():
        rs = sorted(rs, key=lambda r: r["depth"])
        if len(rs) < 2:
            continue
        first, last = rs[0], rs[-1]
        head = f"{act}, {_init_name(first)}" + ("" if variant == "plain" else f", {variant}")
        s = (
            f"{head}: |dz1|/|dzL| {fmt(first['backprop_grad_ratio'])} at depth "
            f"{first['depth']}, {fmt(last['backprop_grad_ratio'])} at depth {last['depth']}: "
            f"{ratio_class(last['backprop_grad_ratio'])}"
        )
        # "vanishes from depth d": d starts the run of vanishing depths that ends at the
        # deepest (a vanishing depth followed by one that does not is no onset)
        onset = None
        for r in reversed(rs):
            if ratio_class(r["backprop_grad_ratio"]) != "vanishes":
                break
            onset = r["depth"]
        if onset is not None and onset != last["depth"]:
            s += f" from depth {onset}"
        w = last["weight_grad_ratio"]
        if ratio_class(w) == "holds" and ratio_class(last["backprop_grad_ratio"]) != "holds":
            s += (
                f" (the weight-gradient ratio stays at {fmt(w)} there: it alone would hide "
                "this, Glorot & Bengio's point)"
            )
        c0, c1 = learn_class(first), learn_class(last)
        if c1 is not None:
            s += (
                f"; trained {last['steps']} steps ({last['optimizer']}): test accuracy "
                f"{fmt(first['accuracy'])} at depth {first['depth']} ({c0}), "
                f"{fmt(last['accuracy'])} at depth {last['depth']} ({c1}; chance "
                f"{fmt(last['chance'])})"
            )
        lines.append(s + ".")
    return lines


def depth_summary(records) -> list:
    """Across activations: does depth make it worse, and which hold up at the deepest."""
    groups = [
        sorted(rs, key=lambda r: r["depth"])
        for rs in _group(records, ("activation", "init", "variant")).values()
    ]
    groups = [g for g in groups if len(g) >= 2]
    if len(groups) < 2:
        return []
    worse = [
        g
        for g in groups
        if _dist(g[-1]["backprop_grad_ratio"]) > _dist(g[0]["backprop_grad_ratio"])
    ]
    deepest = max(g[-1]["depth"] for g in groups)
    at = [g[-1] for g in groups if g[-1]["depth"] == deepest]
    at.sort(key=lambda r: _dist(r["backprop_grad_ratio"]))
    holds = [r for r in at if ratio_class(r["backprop_grad_ratio"]) == "holds"]
    vanish = [r for r in at if ratio_class(r["backprop_grad_ratio"]) == "vanishes"]
    several_inits = len({r["init"] for r in at}) > 1

    def row(r):  # which row of the sweep: activation (+variant) (, init)
        return (
            r["activation"]
            + ("" if r["variant"] == "plain" else f"+{r['variant']}")
            + (f" {_init_name(r)}" if several_inits else "")
        )

    name = lambda r: f"{row(r)} ({fmt(r['backprop_grad_ratio'])})"
    out = [
        f"Depth: the gradient ratio moves away from 1 as depth grows for {len(worse)} of "
        f"{len(groups)} activation/init/variant rows."
    ]
    s = f"At depth {deepest}, "
    s += (
        "within a decade of 1: " + ", ".join(map(name, holds))
        if holds
        else "none stays within a decade of 1"
    )
    if vanish:
        s += "; vanishing (< 1e-2): " + ", ".join(map(name, vanish))
    out.append(s + ".")
    trained = [r for r in at if learn_class(r) is not None]
    if trained:
        best = _best_trained(trained)
        stall = [r for r in trained if learn_class(r) in ("stalls", "diverges")]
        s = f"Trained at depth {deepest}: " + (
            f"best test accuracy {fmt(best['accuracy'])} ({row(best)})"
            if best is not None
            else "every run diverges"
        )
        if stall and best is not None:
            s += "; stalls or diverges: " + ", ".join(map(row, stall))
        out.append(s + ".")
    return out


def init_view(records) -> list:
    """Per (activation, depth, variant) over the inits swept."""
    lines = []
    for (act, depth, variant), rs in _group(records, ("activation", "depth", "variant")).items():
        if len({r["init"] for r in rs}) < 2:
            continue
        parts = [
            f"{_init_name(r)} {fmt(r['backprop_grad_ratio'])} "
            f"({ratio_class(r['backprop_grad_ratio'])})"
            for r in rs
        ]
        best = min(rs, key=lambda r: _dist(r["backprop_grad_ratio"]))
        s = (
            f"{act}, depth {depth}"
            + ("" if variant == "plain" else f", {variant}")
            + ": |dz1|/|dzL| "
            + ", ".join(parts)
        )
        if all(ratio_class(r["backprop_grad_ratio"]) == "vanishes" for r in rs):
            s += f"; it vanishes under every init tried (closest: {_init_name(best)})"
        else:
            s += f"; closest to 1: {_init_name(best)}"
        trained = [r for r in rs if learn_class(r) is not None]
        if trained:
            b = _best_trained(trained)
            if b is None:
                s += "; trained, every init diverges"
            elif learn_class(b) == "stalls":
                s += (
                    f"; trained, none learns (best test accuracy {fmt(b['accuracy'])}, chance "
                    f"{fmt(b['chance'])})"
                )
            else:
                s += (
                    f"; best test accuracy {fmt(b['accuracy'])} with {_init_name(b)} "
                    f"(chance {fmt(b['chance'])})"
                )
        lines.append(s + ".")
    return lines


def variant_view(records) -> list:
    """Per (activation, init, depth): each variant against plain."""
    lines = []
    for (act, _init, depth), rs in _group(records, ("activation", "init", "depth")).items():
        base = next((r for r in rs if r["variant"] == "plain"), None)
        if base is None or len(rs) < 2:
            continue
        for r in rs:
            if r is base:
                continue
            lines.append(
                _remedy_line(r, base, f"{act}, {_init_name(r)}, depth {depth}, {r['variant']}")
            )
    return lines


def _remedy_line(r, base, head, base_name="the baseline") -> str:
    rr, rb = r["backprop_grad_ratio"], base["backprop_grad_ratio"]
    g = remedy_class(rr, rb)
    worse = g in ("rescues", "helps") and _trains_worse(r, base)
    s = f"{head}: |dz1|/|dzL| {fmt(rr)} against {fmt(rb)} for {base_name}: " + (
        f"{g} the gradient ratio, but training is worse" if worse else g
    )
    if g in ("helps", "does not help") and ratio_class(rr) != "holds":
        still = "still" if ratio_class(rr) == ratio_class(rb) else "now"
        s += f" (the gradient {still} {ratio_class(rr)})"
    c, cb = learn_class(r), learn_class(base)
    if c is not None and cb is not None:
        s += f"; test accuracy {fmt(r['accuracy'])} against {fmt(base['accuracy'])} ({c} vs {cb})"
    return s + "."


def remedies_view(records) -> list:
    """The first record is the baseline; every other one a remedy against it, except that
    a variant (BatchNorm, dropout, residual) is judged against the plain network with the
    same activation, init and depth when the preset has one: the variant is what it adds
    (the preset's variants sit on the matched init, not on the baseline's)."""
    if not records:
        return []
    base = records[0]
    lines = [
        f"Baseline: {base['label'] or base['activation']}, depth {base['depth']}: "
        f"|dz1|/|dzL| {fmt(base['backprop_grad_ratio'])}, "
        f"{ratio_class(base['backprop_grad_ratio'])}"
        + (f"; {_train_phrase(base)}" if learn_class(base) else "")
        + "."
    ]
    for r in records[1:]:
        head = r["label"] or f"{r['activation']} {r['variant']}"
        same = None
        if r["variant"] != "plain":
            same = next(
                (
                    p
                    for p in records
                    if p["variant"] == "plain"
                    and all(p[k] == r[k] for k in ("activation", "init", "depth"))
                ),
                None,
            )
        if same is None:
            lines.append(_remedy_line(r, base, head))
        else:
            lines.append(_remedy_line(r, same, head, "the same network without it"))
    return lines


def glorot_view(records) -> list:
    """Per activation x init: the spread of back-propagated gradients over the layers."""
    lines = []
    for (act,), rs in _group(records, ("activation",)).items():
        parts = []
        for r in rs:
            z = r["backprop_grad_norms"]
            finite = [v for v in z if v > 0]
            spread = max(finite) / min(finite) if finite else math.nan
            parts.append((r, spread))
            lines.append(
                f"{act}, {_init_name(r)}: back-propagated gradient norms from layer 1 to "
                f"{r['depth']}: "
                + ", ".join(fmt(v) for v in z)
                + f" (largest/smallest {fmt(spread)}; |dz1|/|dzL| {fmt(r['backprop_grad_ratio'])}"
                f", |dW1|/|dWL| {fmt(r['weight_grad_ratio'])}; activation std "
                f"{fmt(r['activation_std'][0])} -> {fmt(r['activation_std'][-1])})."
            )
        if len(parts) >= 2:
            parts.sort(key=lambda p: p[1])
            (a, sa), (b, sb) = parts[0], parts[-1]
            lines.append(
                f"{act}: {_init_name(a)} keeps the layers within {fmt(sa)}x of each "
                f"other, {_init_name(b)} spreads them {fmt(sb)}x."
            )
    return lines


def training_view(records) -> list:
    """Per optimizer: each init's training outcome (he2015)."""
    lines = []
    for (opt,), rs in _group(records, ("optimizer",)).items():
        outs = []
        for r in rs:
            lab = r["label"] or f"{opt}, {_init_name(r)}"
            lines.append(
                f"{lab}: |dz1|/|dzL| {fmt(r['backprop_grad_ratio'])} at init; "
                + (_train_phrase(r) or "not trained")
                + "."
            )
            outs.append((_init_name(r), learn_class(r), r))
        classes = {c for _, c, _ in outs}
        if len(outs) >= 2 and None not in classes:
            if len(classes) == 1:
                lines.append(
                    f"{opt}: every init {outs[0][1]} here (final loss "
                    + ", ".join(f"{lab} {fmt(r['final_loss'])}" for lab, _, r in outs)
                    + ")."
                )
            else:
                lines.append(f"{opt}: " + "; ".join(f"{lab} {c}" for lab, c, _ in outs) + ".")
    return lines


def compute(records, preset=None) -> list:
    """The verdict lines for a run (a preset's own view, or the generic ones)."""
    if not records:
        return []
    if preset == "remedies":
        return remedies_view(records)
    if preset == "glorot2010":
        return glorot_view(records)
    if preset == "he2015":
        return training_view(records)
    out = depth_view(records) + depth_summary(records) + init_view(records) + variant_view(records)
    return out or record_view(records)


def record_view(records) -> list:
    """One line per configuration (when no comparison applies, e.g. a single network)."""
    lines = []
    for r in records:
        head = f"{r['activation']}, {_init_name(r)}, depth {r['depth']}" + (
            "" if r["variant"] == "plain" else f", {r['variant']}"
        )
        s = (
            f"{head}: |dz1|/|dzL| {fmt(r['backprop_grad_ratio'])}: "
            f"{ratio_class(r['backprop_grad_ratio'])}"
        )
        if learn_class(r) is not None:
            s += "; " + _train_phrase(r)
        lines.append(s + ".")
    return lines
