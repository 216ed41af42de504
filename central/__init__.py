"""The central collector (``ddi-central``): receives every edge site's signed change log,
serves the pull feed and the down log of central-owned reservations."""
