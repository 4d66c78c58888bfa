"""A training forward that computes only what the task's loss needs.

The loss reads the logits at the last position ('=') only. In the last layer the
other positions are still needed as keys and values, but their queries, attention
outputs, MLP and unembedding are wasted work. :func:`last_logits` skips them,
computing with the TransformerLens model's own parameter tensors (so gradients land
on the hooked model, which stays the model of every analysis). It reproduces the
bridge's native transformer (``transformer_lens.model_bridge.sources.native``):
pre-norm blocks without normalisation, split q/k/v/o linears with biases, scores
divided by sqrt(d_head), causal mask, an MLP with biases, an unembedding whose bias
is a fixed zero buffer. ``tests/test_fastpath.py`` checks logits and gradients
against the full TransformerLens forward.

Models with layer norm are not covered: :func:`supports` says so, and the caller
uses the full forward for them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_ACT = {"relu": F.relu, "gelu": F.gelu}


def supports(model) -> bool:
    cfg = model.cfg
    return cfg.normalization_type is None and cfg.act_fn in _ACT and cfg.n_ctx == 3


def parameter_table(model) -> dict[str, torch.Tensor]:
    """The model's parameters by state_dict name, cached on the model (the optimiser
    updates these tensors in place, and ``load_state_dict`` copies into them)."""
    table = getattr(model, "_mechgrok_params", None)
    if table is None:
        from .model import named_parameters

        table = named_parameters(model)
        object.__setattr__(model, "_mechgrok_params", table)
    return table


def last_logits(model, tokens: torch.Tensor) -> torch.Tensor:
    """Logits at the last position (n x d_vocab_out), equal to ``model(tokens)[:, -1]``."""
    return forward(parameter_table(model), model.cfg, tokens)


def forward(P: dict[str, torch.Tensor], cfg, tokens: torch.Tensor) -> torch.Tensor:
    """:func:`last_logits` as a pure function of the parameter tensors ``P`` (by state_dict
    name) and the model's TransformerLens config ``cfg``; ``torch.vmap`` maps it over
    stacked parameters (mechgrok/batch.py)."""
    act = _ACT[cfg.act_fn]
    n, seq = tokens.shape
    heads, d_head = cfg.n_heads, cfg.d_head
    scale = math.sqrt(d_head)
    # F.embedding, not P["embed.weight"][tokens]: on the CPU the indexing's backward accumulates rows
    # with atomic adds across threads, so on 2+ threads its sum order (and the run) changed from run to
    # run; the embedding's backward is deterministic, and on 1 thread bitwise equal to the indexing's
    x = F.embedding(tokens, P["embed.weight"]) + P["pos_embed.weight"][:seq]
    mask = torch.triu(torch.ones(seq, seq, dtype=torch.bool, device=tokens.device), diagonal=1)
    for layer in range(cfg.n_layers):
        b = f"blocks.{layer}."
        last = layer == cfg.n_layers - 1

        def heads_of(h):
            return h.reshape(n, -1, heads, d_head).transpose(1, 2)

        k = heads_of(F.linear(x, P[b + "attn.k.weight"], P[b + "attn.k.bias"]))
        v = heads_of(F.linear(x, P[b + "attn.v.weight"], P[b + "attn.v.bias"]))
        queries = x[:, -1:] if last else x  # the last query sees every key: no mask needed
        q = heads_of(F.linear(queries, P[b + "attn.q.weight"], P[b + "attn.q.bias"]))
        scores = q @ k.transpose(-2, -1) / scale
        if not last:
            scores = scores.masked_fill(mask, float("-inf"))
        z = (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, queries.shape[1], heads * d_head)
        x = queries + F.linear(z, P[b + "attn.o.weight"], P[b + "attn.o.bias"])
        x = x + F.linear(act(F.linear(x, P[b + "mlp.in.weight"], P[b + "mlp.in.bias"])),
                         P[b + "mlp.out.weight"], P[b + "mlp.out.bias"])
    return F.linear(x[:, -1], P["unembed.weight"])
