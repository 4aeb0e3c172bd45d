"""The dialogue engine, its judges, panels, recorded-layout tools, progress and the CLI."""
