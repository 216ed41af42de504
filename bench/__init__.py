"""Side-by-side benchmarks of ddi against NSD, dnsmasq and Kea on the same machine.

``python -m bench`` (``make bench``); see ``bench/run.py``.
"""
