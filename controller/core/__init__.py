"""Domain model and decisions: pure Python, standard library only, no I/O."""
