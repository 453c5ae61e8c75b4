"""The reproduction wing: experiments, training, results and paper tables (design §6).

Cut by pipeline stage; the two papers are data inside it (:mod:`~liquidssm.repro.papers`):

================  ================================================================================
stage             module
================  ================================================================================
schema            :mod:`~liquidssm.repro.spec` -- ``Experiment``, ``Profile``, ``RunSpec``,
                  ``Launch``, ``resolve``, ``maximise`` (pure data)
registry          :mod:`~liquidssm.repro.experiments` -- every entry; which a chapter runs
tasks             :mod:`~liquidssm.repro.taskbase` (what tasks share), :mod:`~liquidssm.repro.tasks`
                  (the table of builders)
models, optimiser :mod:`~liquidssm.repro.models`, :mod:`~liquidssm.repro.optim`
engine            :mod:`~liquidssm.repro.train` (``fit``, the one ``evaluate``),
                  :mod:`~liquidssm.repro.checkpoint` (the one checkpoint writer)
evaluation only   :mod:`~liquidssm.repro.zeroshot` (a trained model at another sampling rate)
results           :mod:`~liquidssm.repro.results` (``make_record``, ``summarise``),
                  :mod:`~liquidssm.repro.transfer` (``results export``/``import`` between checkouts)
runner            :mod:`~liquidssm.repro.runs` (``planned_runs``, ``ensure_results``)
tables            :mod:`~liquidssm.repro.tables` (paper tables, ours beside them in the paper's
                  shape, the agreement rule, smoke summaries, run status and coverage)
scale-out         :mod:`~liquidssm.repro.campaign` (``liquidssm campaign``: many runs as
                  submitit jobs, SLURM or local)
cost              :mod:`~liquidssm.repro.shapes` (the real shapes and sizes of every task's data),
                  :mod:`~liquidssm.repro.plan` (``liquidssm plan``: what an entry, a table and the
                  campaign cost on a device; the CI step check of every full entry)
command line      :mod:`~liquidssm.repro.cli` (``liquidssm train | experiments | results | plan | campaign``; ``results export | import``)
================  ================================================================================

Glossary (one name per idea, in code, records and chapters):

experiment id
    A registry key such as ``"ls4-t1-listops"``: ``experiment_id`` in signatures, ``exp.id`` on an
    entry, ``"experiment"`` in a results record and in frames. An :class:`~liquidssm.repro.spec.
    Experiment` object is an *entry*, named ``exp``; ``fit``/``setup`` accept either.
paper cell
    ``(row, column)`` of an entry: the model as the paper prints it and the task column. The
    transcribed paper tables (``data/paper/*.csv``) and the rendered frames call the same two
    ``model`` and ``task``; :func:`~liquidssm.repro.tables.reproduction_table` matches
    ``row == model`` and ``column == task``.
reported value
    ``value`` in a record: ``best[report][metric_key]``, the paper's ``metric`` on the split the
    paper reports (``Training.report``), read at the best validation evaluation.
direction
    ``maximise``: :func:`~liquidssm.repro.spec.maximise` of a quantity's name; ``Experiment.maximise``
    for the reported metric, ``Training.maximise`` for the monitored one.
profile
    ``"smoke"`` (CPU, fixtures with a learnable signal) or ``"full"`` (the paper's setting).
variant
    of a run, ``"paper"`` or ``"released"`` (:data:`~liquidssm.repro.spec.RUN_VARIANTS`); of a
    model, ``"paper"`` or ``"official"`` (:data:`liquidssm.configs.VARIANTS`).
twin
    an entry that re-runs another model with an entry's own settings (the ``-s4`` entries); it has
    its own row (``S4_TWIN_ROW``, "S4, Liquid-S4 settings") and no paper value.
agreement
    ours and the paper's number agree when ``|ours - paper|`` is within their spreads combined
    (:func:`~liquidssm.repro.tables.agreement`); marked for ``full`` results only.
launch
    where and how a run trains (:class:`~liquidssm.repro.spec.Launch`), never what it trains.

The math modules (``ssm``, ``kernels``, ``liquid``, ``lrc``, ...) never import this package; the
engine imports no paper module; directories come from :mod:`liquidssm.paths`. Import the module
you need, e.g. ``from liquidssm.repro import tables``; this file imports nothing.
"""
