"""Edge to central replication of the IPAM change log."""
