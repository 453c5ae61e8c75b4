"""The reproduction wing: experiments, training, results and paper tables (design §6).

Mirrors ``book/reproductions/``: :mod:`~liquidssm.repro.tables` renders the paper tables beside
our results and :mod:`~liquidssm.book.reproduce` executes the reproduction chapters with
papermill. The math modules (``ssm``, ``kernels``, ``liquid``, ``lrc``, ...) never import this
package; directories come from :mod:`liquidssm.paths`. Import the module you need, e.g.
``from liquidssm.repro import tables``; this file imports nothing.
"""
