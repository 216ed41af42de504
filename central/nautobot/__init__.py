"""Central IPAM: ddi-central keeps a source-of-truth IPAM in step with every site's objects.

``mapping`` (pure) turns the pull feed into the IPAM objects each site should have;
``adapter`` is the seam an IPAM product plugs into (``client``: Nautobot through pynautobot);
``state`` keeps the task's durable cursor, its claims and its lease in central's database;
``task`` follows the feed (``ddi-central serve`` runs it when ``[nautobot]`` is configured).
"""
