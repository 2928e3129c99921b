"""Build-time tools: they write the data files under monitor/data from their sources
(run by a developer, checked by tests with --check); the service never imports them."""
