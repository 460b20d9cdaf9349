"""The study: settings, the steps and their work, and the grid of stages that runs them.

Words, each for one thing: a *step* is a declared unit of work (``steps``: data, teacher, student,
compression, comparison: what it reads and makes, the function that does it); its *work* is that
function (``work/``: the seed's data, the fits, the evaluation records, the compressed variants,
the comparison, with ``analysis`` holding the comparison's numbers); a *stage* is one step run for
one seed (and teacher) as a notebook, with a record and a page (``notebooks`` runs one); a
*study* is every stage of a params file (``scheduler``: the plan, the records, the scheduling),
and a *sweep* one study per swept value (``sweep``). ``config`` holds every setting.

May import every package below it (``compression``, ``training``, ``models``, ``evaluation``,
``data``) and the base modules; never ``kdcore.reports``: pages are written about a study, the
study does not write them (``kdcore.reports.index.publish``).
"""
