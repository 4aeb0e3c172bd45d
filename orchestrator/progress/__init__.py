"""Progress events: the in-process bus, its links to other processes, and the terminal view."""
