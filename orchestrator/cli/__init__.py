"""The `concord` command line: one parser, one module per command group."""
