"""Reports: what a reader sees. ``stages`` runs (or loads) a stage for its notebook and returns
what each section shows; ``display`` shows it (summaries, tables, figures, provenance);
``plots`` draws the figures; ``index`` writes the index pages of a study, a sweep and of every
study; ``sweep`` is the sweep page's content.

The top layer under the CLI: may import everything in kdcore but ``kdcore.cli``.
"""
