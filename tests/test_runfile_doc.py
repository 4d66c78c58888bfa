"""docs/run-file.md is the contract: run its example with plain h5py on a real run file."""

import re

import numpy as np

from conftest import ROOT
from mechgrok import runstore


def _doc_example() -> str:
    text = (ROOT / "docs" / "run-file.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_doc_example_rebuilds_the_model_with_the_same_logits(arm_runs):
    path = arm_runs["dream"]
    scope = {"path": str(path)}
    exec(_doc_example(), scope)  # imports h5py, torch and TransformerLens only
    assert scope["name"] == "0000300_end"
    final = runstore.read_table(path, "metrics")
    assert scope["test_acc"] == final["test_acc"][-1]
    # the same logits as mechgrok's own loading path
    from mechgrok.data import encode
    from mechgrok.model import build_model, last_logits, load_weights
    import torch

    cfg = runstore.read_config(path)
    model = build_model(cfg)
    load_weights(model, runstore.read_checkpoint(path, "0000300_end"))
    x = torch.as_tensor(encode(runstore.read_table(path, "split")["test_idx"], cfg.p)[0])
    assert torch.equal(last_logits(model, x), scope["logits"])


def test_documented_columns_are_the_written_ones(arm_runs):
    text = (ROOT / "docs" / "run-file.md").read_text()
    for column in [*runstore.METRIC_COLUMNS, *runstore.EVENT_COLUMNS, *runstore.EVENT_EXAMPLE_COLUMNS]:
        # the doc lists the four whole-set "_after" columns as "..._after (same four)" beside their "_before"
        documented = column.replace("_after", "_before") if column.endswith("_acc_after") or \
            column.endswith("_loss_after") else column
        assert f"`{documented}`" in text, column
    attrs = runstore.read_attrs(arm_runs["dream"])
    for key in attrs:
        assert f"`{key}`" in text, key
    assert np.all(runstore.read_table(arm_runs["dream"], "split")["train_idx"] // 13 < 6)


def test_results_table_doc_lists_every_column_in_order():
    from mechgrok.results import ANALYSES_COLUMNS, CARRIED_ANALYSES, COLUMNS, CURVE_COLUMNS

    runs, rest = (ROOT / "docs" / "results-table.md").read_text().split("## The curves table")
    curves, analyses = rest.split("## The analyses table")
    for text, columns in ((runs, COLUMNS), (curves, CURVE_COLUMNS), (analyses, ANALYSES_COLUMNS)):
        assert tuple(re.findall(r"^\| `(\w+)` \|", text, flags=re.M)) == columns
    for name, (keys, attrs) in CARRIED_ANALYSES.items():  # the carried keys, as the table lists them
        line = re.search(rf"^\| {name} \| (.*) \| (.*) \|$", analyses, flags=re.M)
        assert line and tuple(re.findall(r"`(\w+)`", line[1])) == keys, name
        assert tuple(re.findall(r"`(\w+)`", line[2])) == (*attrs, "p"), name
