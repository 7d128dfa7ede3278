"""Hardware-in-the-loop: simulators, a private broker and rigs that exercise siteedge end to end."""
