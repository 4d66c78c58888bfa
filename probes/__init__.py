"""Probes: small classifiers read off the hooked model's activations.

Filled by the analysis issue (probe accuracy over training); the package exists
now so that the layout of the design card is in place.
"""
