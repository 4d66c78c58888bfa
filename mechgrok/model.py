"""The model: a TransformerLens 4.x ``TransformerBridge`` built from scratch.

``build_model`` is the only place the architecture is defined. The bridge keeps
TransformerLens hook names (``hook_embed``, ``blocks.L.mlp.hook_post`` ...),
``run_with_cache`` and ``W_E``/``W_U``/``W_in``, so analyses use the trained
model itself. Weights are saved and loaded through ``model.state_dict()`` of
the bridge (clean names such as ``blocks.0.mlp.in.weight``).

Traps this module avoids (see the developers' brief): the unembedding bias is a
fixed zero buffer; ``return_type="loss"`` is a next-token loss, so the task loss
is taken on ``logits[:, -1]`` here; ``enable_compatibility_mode()`` rewrites
weights and is never called on a model being trained.

Importing this module sets torch's CPU numerics policy: subnormal numbers are flushed
to zero (:func:`flush_denormals`), which keeps late training steps from slowing down.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
import torch.nn.functional as F

from . import fastpath
from .config import RunConfig


def flush_denormals() -> bool:
    """Make torch's CPU arithmetic flush subnormal numbers to zero; return whether every
    intra-op thread now does (measured on a subnormal input, not assumed).

    Why: once a run has memorised its training set, some activations and gradients fall
    below float32's smallest normal number (1.2e-38), and x86 arithmetic on such subnormals
    is many times slower; steps at the end of an easy-regime run took 3.3x longer with them
    (``benchmarks/bench_denormals.py``). Flushing changes only values below 1.2e-38, which
    become 0; any sum they enter with a normal number rounds them away already.

    A thread takes the flag when it is set in it, or when it is created after the flag was
    set in the thread creating it. This module calls the function at import, before mechgrok
    computes anything, so torch's thread pool is created flushed; a pool that already existed
    keeps its other threads unflushed, and the return value then says False. Returns False on
    CPUs without the flag (not x86 with SSE3).
    """
    torch.set_flush_denormal(True)
    # built from its bit pattern: arithmetic would already flush it in this thread
    subnormal = torch.from_numpy(np.full(1 << 20, 1 << 20, dtype=np.int32)).view(torch.float32)
    return not bool((subnormal * 1.0).view(torch.int32).count_nonzero())  # bits: no float compare


DENORMALS_FLUSHED = flush_denormals()


def build_model(cfg: RunConfig, device: str | torch.device = "cpu"):
    """A freshly initialised, seeded hooked transformer for ``cfg``."""
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    bridge_cfg = TransformerBridgeConfig(
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        d_head=cfg.d_head,
        d_mlp=cfg.d_mlp,
        d_vocab=cfg.vocab,
        d_vocab_out=cfg.p,
        n_ctx=3,
        act_fn=cfg.act_fn,
        normalization_type=cfg.normalization,
        seed=cfg.seed,
    )
    with contextlib.redirect_stdout(io.StringIO()):  # TransformerLens prints "Moving model to device"
        return TransformerBridge.boot_native(bridge_cfg).to(device)


def named_parameters(model) -> dict[str, torch.nn.Parameter]:
    """Trainable parameters under their ``state_dict`` names, in ``model.parameters()`` order."""
    by_ptr = {t.data_ptr(): name for name, t in model.state_dict().items()}
    return {by_ptr[p.data_ptr()]: p for p in model.parameters()}


def weights(model) -> dict[str, np.ndarray]:
    """The full ``state_dict`` (parameters and the zero unembedding bias) as arrays."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def load_weights(model, arrays: dict[str, np.ndarray]) -> None:
    """Load arrays saved by :func:`weights` (strict: every key must match)."""
    device = next(model.parameters()).device
    model.load_state_dict({k: torch.as_tensor(np.asarray(v)).to(device) for k, v in arrays.items()}, strict=True)


def last_logits(model, tokens: torch.Tensor, fast: bool = False) -> torch.Tensor:
    """Logits at the '=' position, the only one the task scores (n x p).

    ``fast`` computes them with :mod:`mechgrok.fastpath` (same parameters, same
    values to float32 rounding, about a third less work) where the architecture
    allows; otherwise, and by default, through the full TransformerLens forward.
    """
    if fast and fastpath.supports(model):
        return fastpath.last_logits(model, tokens)
    return model(tokens)[:, -1]


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each example, in the dtype of ``logits``."""
    return F.cross_entropy(logits, labels, reduction="none")


def weight_norm(model) -> float:
    """L2 norm of all trainable parameters taken together."""
    with torch.no_grad():
        return float(torch.sqrt(sum((p.double() ** 2).sum() for p in model.parameters())))


@torch.no_grad()
def evaluate(model, tokens: torch.Tensor, labels: torch.Tensor, batch: int = 16384,
             fast: bool = False) -> tuple[float, float]:
    """Mean loss (float64, from the float32 logits) and accuracy over a whole set."""
    loss_sum, correct = 0.0, 0
    for i in range(0, len(tokens), batch):
        logits = last_logits(model, tokens[i:i + batch], fast)
        y = labels[i:i + batch]
        loss_sum += float(F.cross_entropy(logits.double(), y, reduction="sum"))
        correct += int((logits.argmax(-1) == y).sum())
    return loss_sum / len(tokens), correct / len(tokens)
