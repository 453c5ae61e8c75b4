"""Book tooling: run the reproduction chapters with papermill (:mod:`.reproduce`), keep the
execution cache honest about results (:mod:`.cache`), check the chapters' rules (:mod:`.check`)
and the built site in a headless browser (:mod:`.site`). The library never imports this package.
"""
