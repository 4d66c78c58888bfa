"""Probes: linear classifiers and regressions read off the hooked model's activations.

``probes.linear`` holds the probes (scikit-learn); ``mechgrok.analyze probes`` runs
them over a run's checkpoints and stores the scores in the run file.
"""
