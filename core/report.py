"""The Markdown report of a run: samples, score histograms, kept/rejected counts, metrics, evaluation."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imagina.core.modality import take
from imagina.core.screening import OVER_BUDGET

if TYPE_CHECKING:
    from imagina.core.pipeline import AugmentResult

logger = logging.getLogger(__name__)


def score_histograms(path: Path, scores: dict[str, np.ndarray], keep: np.ndarray) -> None:
    """One histogram per score, kept and rejected candidates overlaid."""
    from imagina.core.export import new_figure

    names = list(scores)
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig = new_figure((4 * cols, 2.8 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, name in zip(axes.flat, names):
        v = np.asarray(scores[name], dtype=float)
        finite = np.isfinite(v)
        bins = np.histogram_bin_edges(v[finite], bins=30) if finite.any() else 10
        ax.hist(v[finite & ~keep], bins=bins, alpha=0.6, label="rejected", color="tab:red")
        ax.hist(v[finite & keep], bins=bins, alpha=0.6, label="kept", color="tab:green")
        ax.set_title(name)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _pick(labels: np.ndarray, mask: np.ndarray, per_class: int) -> np.ndarray:
    out = []
    for c in np.unique(labels):
        out.extend(np.flatnonzero((labels == c) & mask)[:per_class].tolist())
    return np.array(out, dtype=np.int64)


def write_report(directory: Path, result: AugmentResult, evaluation: Any = None, *, per_class: int = 8) -> Path:
    """Write ``report.md`` and ``figures/`` into ``directory``; returns the report's path."""
    fig_dir = directory / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    mod, keep, labels = result.modality, result.keep, result.labels
    real = result.real
    real_idx = _pick(real.y, np.ones(len(real.y), bool), per_class)
    mod.preview(fig_dir / "real.png", take(real.X, real_idx), real.y[real_idx], title="real", meta=real.meta)
    kept_idx = _pick(labels, keep, per_class)
    if len(kept_idx):
        mod.preview(fig_dir / "kept.png", take(result.candidates, kept_idx), labels[kept_idx], title="kept synthetic", meta=real.meta)
    rej_idx = _pick(labels, ~keep, per_class)
    if len(rej_idx):
        mod.preview(fig_dir / "rejected.png", take(result.candidates, rej_idx), labels[rej_idx], title="rejected synthetic", meta=real.meta)
    score_histograms(fig_dir / "scores.png", result.screen.scores, keep)

    rec = result.record
    lines = [f"# imagina report: {mod.name}", ""]
    data = rec["data"]
    used = result.real.report.used
    held = (f" (of {used} loaded: {used - data['items']} are held out to choose the evaluation's settings)"
            if used is not None and used > data["items"] else "")
    lines += [f"Real data: {data['items']} items in {len(data['per_class'])} classes{held}; {result.real.report.summary()}.", ""]
    if result.warnings:
        lines += ["## Warnings", "", *(f"- {w}" for w in result.warnings), ""]
    if result.recommendation is not None:
        rec_ = result.recommendation
        n_dose, n_reserve = int(result.in_dose.sum()), int((result.keep & ~result.in_dose).sum())
        what = (f"`samples/` holds the {n_dose} items to add to your real training set" if n_dose else
                "`samples/` is empty: add nothing synthetic to your training set (train on your real items, with "
                "classical augmentation where it helps)")
        lines += ["## Recommendation", "", rec_.to_markdown(), "",
                  what + (f"; the {'other ' if n_dose else ''}{n_reserve} kept items are in `reserve/`, for your own "
                          "experiments." if n_reserve else "."), ""]
        if rec_.classical_views:
            k, n = rec_.classical_views, len(real.y)
            lo, hi = rec_.classical_interval
            strength = "" if rec_.classical_strength == "default" else f" ({rec_.classical_strength})"
            lines += [f"`classical/` holds {k} classical view(s){strength} of each real item ({k * n} in all; `classical.csv` "
                      "names each one's real item): the reference the dose was measured on, itself "
                      f"{100 * rec_.classical_lift:+.2f} points [{100 * lo:+.2f}, {100 * hi:+.2f}] over real only on the probe. "
                      + ("The recommended mix is your real items, `classical/` and `samples/`." if n_dose else
                         ("A clear gain: add them to your real items, or train with the same classical augmentation."
                          if lo > 0 else "Not a clear gain: check them (or classical augmentation tuned to your "
                          "model) on held-out data of your own.")), ""]
    lines += ["## Samples", "", "| real | kept synthetic | rejected synthetic |", "|---|---|---|",
              "| ![real](figures/real.png) | " + ("![kept](figures/kept.png)" if len(kept_idx) else "none")
              + " | " + ("![rejected](figures/rejected.png)" if len(rej_idx) else "none") + " |", ""]
    lines += ["## Screening", "", f"{rec['screen']['candidates']} candidates, {rec['screen']['kept']} kept. "
              + _embedder_line(rec.get("embedder", {})), "",
              "| class | candidates | passed every test | kept | rejected: reasons |", "|---|---|---|---|---|"]
    for c in np.unique(labels):
        rows = labels == c
        reasons = Counter(r.split(":")[0] for r, m in zip(result.screen.reasons, rows) if m and r is not None)
        passed = int((rows & keep).sum()) + reasons.get(OVER_BUDGET, 0)  # over budget: passed, not needed
        lines.append(f"| {c} | {int(rows.sum())} | {passed} | {int((rows & keep).sum())} | "
                     + ", ".join(f"{k} {v}" for k, v in reasons.most_common()) + " |")
    lines += ["", f"\"{OVER_BUDGET}\" candidates passed every test; their class had its `--per-class` items already."]
    lines += ["", "![score histograms](figures/scores.png)", ""]
    texts = mod.item_text(result.candidates)
    examples = [(i, r) for i, r in enumerate(result.screen.reasons) if r is not None]
    if examples:
        lines += ["Examples of rejections:", ""]
        seen: set[str] = set()
        for i, r in examples:
            kind = r.split(":")[0]
            if kind not in seen:
                seen.add(kind)
                lines.append(f"- candidate {i} (label {labels[i]}): {r}" + (f" — {_quote(texts[i])}" if texts else ""))
        lines.append("")
    if texts:
        lines += _examples_per_class(labels, keep, result.screen.reasons, texts) + [""]
    lines += ["## Metrics (embedding space of the screen)", "",
              "Fréchet distance (0: the same mean and covariance as the real items); precision (share inside the "
              "real manifold) and recall (share of the real manifold they cover); density and coverage, the same "
              "two questions robust to outliers (density about 1 for items as typical as the real ones).", "",
              "| set | " + " | ".join(_metric_names(result.metrics)) + " |",
              "|---|" + "---|" * len(_metric_names(result.metrics))]
    for key in ("all_candidates", "kept"):
        if key in result.metrics:
            lines.append(f"| {key} | " + " | ".join(f"{result.metrics[key].get(m, float('nan')):.3f}" for m in _metric_names(result.metrics)) + " |")
    div = result.metrics.get("within_class_diversity", {})
    lines += ["", "Within-class diversity (mean pairwise distance inside a class; near 0 = collapse): embedding space "
              + ", ".join(f"{k} {v:.3f}" for k, v in div.items())]
    raw = result.metrics.get("within_class_diversity_generator_space")
    if raw:
        lines[-1] += "; generator input space " + ", ".join(f"{k} {v:.3f}" for k, v in raw.items())
    lines[-1] += "."
    lines.append("")
    stats = result.metrics.get("set_statistics")
    if stats:
        names = list(stats["real"])
        lines += ["The items themselves (higher distinct-n, lower self-BLEU = more varied; distinct-n falls as a set "
                  "grows, so compare sets at the real set's size (\"@ real size\": a random subsample that large); "
                  "text: known-words = share of "
                  "sentences made only of known words, perplexity of a word bigram model fitted on the real sentences, "
                  "held-out for the real set = the reference):", "",
                  "| set | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        lines += [f"| {key} | " + " | ".join(f"{v[n]:.3f}" for n in names) + " |" for key, v in stats.items()]
        lines.append("")
    if evaluation is not None:
        lines += ["## Evaluation", "", evaluation.to_markdown(), ""]
    final = (rec.get("generator") or {}).get("diagnostics") or {}
    if final:  # the generator's own end-of-training diagnostics (text: KL per token, posterior collapse)
        shown = (f"{k} {str(v).lower() if isinstance(v, bool) else v if isinstance(v, int) else f'{v:.3f}'}"
                 for k, v in final.items())  # counts and flags as they are, measures to 3 decimals
        lines += ["## Generator", "", "After training: " + ", ".join(shown) + ".", ""]
    lines += ["## Run", "", f"Seed {rec['seed']}; timings (s): " + ", ".join(f"{k} {v}" for k, v in rec["timings"].items()) + ".",
              "Full configuration, versions and loss history: `run.json`.", ""]
    path = directory / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _embedder_line(record: dict) -> str:
    """How the screen's embedding was chosen, in one sentence (``auto``: the cross-validated accuracies)."""
    auto = record.get("auto")
    if not auto:
        return f"Screen embedder: {record.get('spec', 'own')}."
    if "cv_accuracy" not in auto:
        return f"Screen embedder: {auto['chosen']} ({auto['reason']})."
    scores = ", ".join(f"{k} {v:.3f}" for k, v in auto["cv_accuracy"].items())
    return (f"Screen embedder: {auto['chosen']}, the best label consistency of {auto['folds']}-fold cross-validation "
            f"on the real items ({scores})" + (", chosen by default because the pretrained extra is installed" if auto.get("default") else "") + ".")


def _quote(text: str, limit: int = 120) -> str:
    """One line of an item's text for a Markdown table: whitespace folded, ``|`` escaped, shortened."""
    text = " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return "“" + _cell(text) + "”"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _examples_per_class(labels: np.ndarray, keep: np.ndarray, reasons: list, texts: list[str], n: int = 3) -> list[str]:
    """A table of up to ``n`` kept and ``n`` rejected items per class; the rejected ones show as many
    different reasons as there are, "over budget" (an item that passed) last."""
    lines = ["Examples per class:", "", "| class | kept | rejected | why |", "|---|---|---|---|"]
    for c in np.unique(labels):
        kept = np.flatnonzero((labels == c) & keep)[:n].tolist()
        rejected, kinds = [], set()
        rows = np.flatnonzero((labels == c) & ~keep).tolist()
        for i in sorted(rows, key=lambda i: reasons[i].startswith(OVER_BUDGET)):
            kind = reasons[i].split(":")[0]
            if kind not in kinds:
                kinds.add(kind)
                rejected.append(i)
            if len(rejected) == n:
                break
        for r in range(max(len(kept), len(rejected))):
            k = _quote(texts[kept[r]]) if r < len(kept) else ""
            j = rejected[r] if r < len(rejected) else None
            lines.append(f"| {_cell(c) if r == 0 else ''} | {k} | {_quote(texts[j]) if j is not None else ''} | "
                         f"{_cell(reasons[j]) if j is not None else ''} |")
    return lines


def _metric_names(metrics: dict) -> list[str]:
    names: list[str] = []
    for key in ("all_candidates", "kept"):
        for m in metrics.get(key, {}):
            if m not in names:
                names.append(m)
    return names
