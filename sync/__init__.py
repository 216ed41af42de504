"""Edge to central replication of the IPAM change log: the wire format both programs share
(``protocol``, ``signing``) and the edge's side (``agent``, the HTTP loop around the round's
decisions in ``round``, with ``outbox`` and ``backoff``). The collector is ``central``."""
