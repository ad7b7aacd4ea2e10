"""Fine-tuning a base of a registered family (`birdview.core.families`) on Med-GRIT-style
data (``birdview-train fit``).

- `recipe`: the run's settings (YAML in ``trainer/recipes/``, ``key=value`` overrides);
- `dataset`: Med-GRIT items → conversations in the base family's box format;
- `collate`: the processor's tokens, labels on assistant tokens only, padding or packing;
- `attention`: ``sdpa_varlen``, packed rows attended conversation by conversation;
- `model`: the base with its freeze policy, or LoRA/QLoRA adapters;
- `callbacks`, `held_out`: throughput, CSV, loss curve, held-out VG/ROC every epoch;
- `run`: `fit` itself, on transformers' Trainer; `checkpoint`: the output folder and
  ``birdview.json``; `merge`: adapters folded into a full checkpoint.

Heavy imports (torch, transformers) happen when the submodules are imported, not here.
"""
