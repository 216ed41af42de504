"""Fuzzing harnesses for every wire entry point, and their runner (``python -m fuzz``).

``fuzz.targets`` has one module per entry point; ``fuzz.core`` the contract each input is held
to (a reply, a counted drop, or the documented error type); ``fuzz.engines`` the two input
makers (atheris, or hypothesis-driven mutation where atheris does not install).
"""
