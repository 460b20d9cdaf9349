"""Evaluation: how predictions are scored and how numbers over seeds are read.

Owns the metrics (per label, at tuned thresholds and at 0.5, threshold-free criteria), the
statistics over seeds (t-intervals, paired differences, Holm, power, the test-block bootstrap),
the records' vocabulary (where each metric sits in an evaluation record), the feature maps
(t-SNE, UMAP) and numbers as a reader reads them (tables for people and for a paper).

Plain numpy, pandas and scikit-learn: no torch. May import ``kdcore.data`` and the base modules
(``kdcore.errors``, ``io``, ``layout``, ``progress``, ``seeds``, ``provenance``); nothing above.
"""
