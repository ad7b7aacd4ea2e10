"""COCO caption metrics with pycocoevalcap, one modality at a time.

The texts are tokenised with pycocoevalcap's PTB tokenizer (Java, as COCO's evaluation does),
once for all items; then BLEU-1..4, METEOR, ROUGE-L and CIDEr are computed over each
modality's items alone, so CIDEr's document frequencies come from that modality only. SPICE
needs Stanford CoreNLP jars that pycocoevalcap downloads on first use; this machine works
offline, so SPICE runs only when those jars are already in place and is otherwise reported as
unavailable (None), never as 0.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

__all__ = ["CAPTION_METRICS", "caption_scores", "spice_unavailable_reason"]

logger = logging.getLogger(__name__)

CAPTION_METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE")
_SPICE_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def spice_unavailable_reason() -> str | None:
    """Why SPICE cannot run here, or None when it can."""
    if shutil.which("java") is None:
        return "no Java runtime on PATH"
    try:
        import pycocoevalcap.spice as spice
    except ImportError:
        return "pycocoevalcap is not installed"
    lib = Path(spice.__file__).parent / "lib"
    missing = [jar for jar in _SPICE_JARS if not (lib / jar).is_file()]
    if missing:
        return f"Stanford CoreNLP is not installed for SPICE (missing {', '.join(missing)})"
    return None


def caption_scores(
    references: Sequence[str],
    responses: Sequence[str],
    groups: dict[str, list[int]],
    *,
    spice: bool,
) -> tuple[dict[str, dict[str, float | None]], str | None]:
    """Metrics per group: ``groups`` maps a modality to the positions of its items.

    Returns the scores (group → metric → value; SPICE None when unavailable or not asked
    for) and why SPICE is unavailable (None when it ran or was not asked for).

    Raises:
        ImportError: pycocoevalcap is not installed (``pip install 'birdview[train]'``).
        RuntimeError: the Java tokenizer or METEOR failed.
    """
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.rouge.rouge import Rouge
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    except ImportError as exc:
        raise ImportError(
            "Unable to compute caption metrics as pycocoevalcap is not installed; install "
            "'birdview[train]'"
        ) from exc
    if shutil.which("java") is None:
        raise RuntimeError("Unable to compute caption metrics as no Java runtime is on PATH")
    reason = spice_unavailable_reason() if spice else None
    tokenizer = PTBTokenizer()
    texts = {("ref", n): [{"caption": t}] for n, t in enumerate(references)}
    texts.update({("hyp", n): [{"caption": t}] for n, t in enumerate(responses)})
    tokens = tokenizer.tokenize(texts)  # one Java run for both sides
    refs = {n: tokens[("ref", n)] for n in range(len(references))}
    hyps = {n: tokens[("hyp", n)] for n in range(len(responses))}
    meteor = Meteor()
    spice_scorer = _spice() if spice and reason is None else None
    scores: dict[str, dict[str, float | None]] = {}
    try:
        for group, positions in groups.items():
            if not positions:
                continue
            gts = {n: refs[n] for n in positions}
            res = {n: hyps[n] for n in positions}
            scores[group] = _group_scores(gts, res, Bleu, meteor, Rouge, Cider, spice_scorer)
            logger.info("caption metrics of %s: %d items", group, len(positions))
    finally:
        _close_meteor(meteor)
    return scores, reason


def _group_scores(gts, res, bleu_cls, meteor, rouge_cls, cider_cls, spice_scorer):
    bleu, _ = bleu_cls(4).compute_score(gts, res, verbose=0)
    result: dict[str, float | None] = {f"BLEU-{n + 1}": float(bleu[n]) for n in range(4)}
    result["METEOR"] = float(meteor.compute_score(gts, res)[0])
    result["ROUGE-L"] = float(rouge_cls().compute_score(gts, res)[0])
    result["CIDEr"] = float(cider_cls().compute_score(gts, res)[0])
    result["SPICE"] = float(spice_scorer.compute_score(gts, res)[0]) if spice_scorer else None
    return result


def _spice():
    from pycocoevalcap.spice.spice import Spice

    return Spice()


def _close_meteor(meteor) -> None:
    """Stop METEOR's Java process now (pycocoevalcap only does it when garbage-collected;
    its ``__del__`` copes with a process already stopped)."""
    process = meteor.meteor_p
    with meteor.lock:
        try:
            process.stdin.close()
        except OSError:
            pass
        process.kill()
        process.wait()
