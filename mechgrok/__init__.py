"""mechgrok: instrumentation for grokking experiments with replay ("dreaming").

The package is organised one module per concept:

- ``config``   frozen run configuration and the paper's presets
- ``data``     modular-addition task and train/test splits
- ``model``    the TransformerLens model and its loss
- ``replay``   surprise memory and replay selection (dream / control)
- ``loop``     the training loop shared by every arm
- ``runstore`` the HDF5 run file (schema in docs/run-file.md)
- ``train``    command-line interface over ``loop.train``

Importing the package is cheap: torch and TransformerLens are imported only
by the modules that need them.
"""

__version__ = "0.1.0"
