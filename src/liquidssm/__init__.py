"""liquidssm: the tested library behind the book *Liquid State Spaces*.

Modules follow the book's chapters: ``ssm`` (continuous SSMs, discretization, convolution),
``hippo``/``cauchy``/``kernels`` (the S4 kernel), ``liquid``/``layers`` (Liquid-S4),
``scan``/``lrc``/``newton``/``lrcssm`` (LrcSSM), ``configs`` (model configurations), ``paths``
(directories), ``data`` (datasets), ``repro`` (registry, training engine, results, paper tables),
``bench`` (benchmarks). Import the module you need, e.g. ``from liquidssm import ssm``.
"""

__version__ = "0.1.0"
