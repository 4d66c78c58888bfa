"""The two Fourier readings (W_E's spectrum, the logits' (a+b) spectrum) at each run's final checkpoint.

    .venv/bin/python benchmarks/fourier_readings.py RUN.h5 [RUN.h5 ...] [--out F]

A check of the instrument, not of a claim: on runs known to have grokked, does each
reading find the modular-addition algorithm? For each run file (slim copies included:
only the final checkpoint is read) it computes, at the final checkpoint, with the
definitions of mechgrok/fourier.py:

- test accuracy over the held-out pairs;
- W_E's reading: top-5 share, number of key frequencies (80% of the energy), and the
  restricted and excluded losses with those keys;
- the logits' reading: the top-5 share of the logit spectrum along cos/sin k(a+b), and
  the restricted and excluded losses with its five strongest frequencies;
- MLP neurons: per layer, the share of live neurons whose best single frequency
  explains >= 50% of their activation's variance and is one of the logit keys.

Writes ``benchmarks/results/fourier_readings.json`` (or ``--out``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from mechgrok import fourier as F
from mechgrok import runstore
from mechgrok.analyze import RunView
from mechgrok.cli import OneLineParser, run_one_line


def reading(path: Path) -> dict:
    view = RunView(path, allow_slim=True)  # reads only the final checkpoint, stores nothing
    cfg, p = view.cfg, view.cfg.p
    final = runstore.list_checkpoints(path)[-1]
    w = view.load(final["name"])
    hooks = [f"blocks.{L}.mlp.hook_post" for L in range(cfg.n_layers)]
    logits, acts = view.forward(hooks)
    test = view.test_idx
    row = {"path": str(path), "step": int(final["step"]), "grok_step": view.attrs.get("grok_step"),
           "weight_decay": cfg.weight_decay, "split": cfg.split,
           "test_acc": float((logits[test].argmax(1) == view.y_all.numpy()[test]).mean())}
    _, we = F.frequency_norms(w["embed.weight"][:p])
    for name, spectrum in (("we", we), ("logit", F.logit_spectrum(logits, p))):
        keys = F.key_frequencies(spectrum) if name == "we" else F.top_frequencies(spectrum)
        losses = F.restricted_and_excluded_loss(logits, p, keys, view.train_idx)
        row[name] = {"top_share": F.sparsity(spectrum)["top_share"], "n_key": int(len(keys)),
                     "keys": [int(k) for k in keys[:8]], "energy_share": [float(spectrum[k - 1] ** 2 / (spectrum ** 2).sum()) for k in keys[:5]], "restricted_loss": losses["restricted_loss"],
                     "excluded_loss": losses["excluded_loss"]}
    logit_keys = set(row["logit"]["keys"])
    row["neurons_on_logit_keys"] = []
    for h in hooks:
        freq, share = F.neuron_frequencies(acts[h], p)
        alive = freq > 0
        on = alive & (share >= 0.5) & np.isin(freq, sorted(logit_keys))
        row["neurons_on_logit_keys"].append(float(on.sum() / max(alive.sum(), 1)))
    return row


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fourier_readings.json")
    args = ap.parse_args()
    rows = []
    for path in args.paths:
        r = reading(path)
        rows.append(r)
        print(f"{path}: step {r['step']}, grokked at {r['grok_step']}, test acc {r['test_acc']:.3f}; W_E top-5 "
              f"{r['we']['top_share']:.2f} ({r['we']['n_key']} keys, restricted {r['we']['restricted_loss']:.3g}); "
              f"logits top-5 {r['logit']['top_share']:.4f} (keys {r['logit']['keys']}, "
              f"restricted {r['logit']['restricted_loss']:.3g}); neurons on logit keys "
              f"{', '.join(f'{s:.2f}' for s in r['neurons_on_logit_keys'])}", flush=True)
    args.out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(run_one_line("fourier_readings.py", main))
